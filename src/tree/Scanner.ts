/**
 * Walks the images folder: `{os}/{release}/{arch}/{variant}/{version}/` and the regular files of each version,
 * with what the hasher needs to know a file again (device, inode, size, mtime). A path that leads outside the
 * images folder through a symlink is refused; hidden folders (uploads in progress) and stray names are skipped.
 */
import { FileSystem, Path } from "@effect/platform"
import { Data, Effect, Either } from "effect"
import type { Stats } from "node:fs"
import { lstatSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs"
import { realpath, stat } from "node:fs/promises"
import type { FileIdentity } from "./Identity.js"
import { sumsFileName } from "./Sha256Sums.js"
import { versionKeyOf } from "./VersionKey.js"
import { type ImageYaml, imageYamlLimit, imageYamlName, parseImageYaml } from "./ImageYaml.js"
import {
  type FileEntry,
  isImageFileName,
  isWithin,
  planVersion,
  type Refusal,
  refusal,
  type VersionPlan,
  type VersionRef,
  versionDir,
  versionFolderKind
} from "./Layout.js"

/** A file of a version as found on disk, with what tells it again: device, inode, size, mtime, ctime. */
export interface FoundFile extends FileEntry, FileIdentity {
  /** Absolute path. */
  readonly path: string
  /**
   * A symlink leading into another version folder: that folder's key. The file watcher hears a change of the
   * target under the target's path only, so the service looks at this version again on events there too.
   */
  readonly linksInto?: string | undefined
}

export type FoundPlan = VersionPlan<FoundFile>

export interface ScanResult {
  readonly plans: ReadonlyArray<FoundPlan>
  readonly refusals: ReadonlyArray<Refusal>
}

/** What one version folder holds now. */
export type VersionScan =
  | { readonly _tag: "Plan"; readonly plan: FoundPlan }
  | { readonly _tag: "Refused"; readonly refusal: Refusal }
  /** Not a version folder (any more): gone, hidden, or a name that is not one. */
  | { readonly _tag: "Absent" }

/** The images folder itself cannot be read: the run cannot go on. */
export class ImagesFolderError extends Data.TaggedError("ImagesFolderError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `images folder ${this.path}: ${this.reason}`
  }
}

const levels = ["os", "release", "arch", "variant"] as const

/** The value, or undefined when the call throws (an entry that vanished while being read). */
const attempt = <A>(f: () => A): A | undefined => {
  try {
    return f()
  } catch {
    return undefined
  }
}

/** The error code of a call that throws (ELOOP, ENOENT), or undefined when it does not. */
const errorCode = (f: () => unknown): string | undefined => {
  try {
    f()
    return undefined
  } catch (e) {
    return (e as NodeJS.ErrnoException).code
  }
}

interface Entry {
  readonly name: string
  readonly full: string
  readonly kind: "dir" | "file" | "other"
  /** The entry itself is a symlink (to a place inside the images folder). */
  readonly symlink: boolean
  /** Where a symlink leads, resolved. */
  readonly real?: string
  /** For files (and whatever a symlink leads to). */
  readonly info: Stats | undefined
  /** What an entry that is no regular file is, for a refusal: "a fifo", "a folder", "a dangling symlink". */
  readonly what?: string
}

/** What a folder entry (or what a symlink leads to) is, when it is no regular file. */
const entryKind = (s: Pick<Stats, "isDirectory" | "isFIFO" | "isSocket" | "isBlockDevice" | "isCharacterDevice">) =>
  s.isDirectory() ? "a folder" : s.isFIFO() ? "a fifo" : s.isSocket() ? "a socket" : s.isBlockDevice() || s.isCharacterDevice() ? "a device" : "no regular file"

/**
 * Why a folder reached through a symlink is refused: the file watcher does not follow symlinks, so changes
 * under it would arrive on the target's path or not at all, and what is published would go stale.
 */
const symlinkedFolder = (real: string) =>
  `a symlink to a folder (${real}): changes inside it are not seen; use a real folder or a bind mount`

/**
 * A version's image.yaml, read with every look at its folder: a few lines, cheaper to read again than to
 * remember, and never part of what identifies the image files, so an edit republishes without re-hashing.
 */
const readImageYamlNow = (file: FoundFile): Either.Either<ImageYaml, string> => {
  if (file.size > imageYamlLimit) return Either.left(`larger than ${imageYamlLimit / 1024} KiB`)
  const text = attempt(() => readFileSync(file.path, "utf8"))
  return text === undefined ? Either.left("cannot be read") : parseImageYaml(text)
}

/**
 * The files a version is published from or checked by: its image files, and its SHA256SUMS and image.yaml. One
 * of them that is no regular file, or leads outside the images folder, refuses the version: skipped, a sums
 * file would let wrong bytes through unchecked, and an image.yaml's aliases would silently go.
 */
const isCheckedFileName = (name: string) => isImageFileName(name) || name === sumsFileName || name === imageYamlName

/** The segments of a resolved path below the (resolved) images folder. */
const segmentsBelow = (realRoot: string, real: string, sep: string) => real.slice(realRoot.length + 1).split(sep)

/** A path below the images folder with a hidden segment: an upload in progress, never published under any name. */
const hiddenBelow = (realRoot: string, real: string, sep: string) => segmentsBelow(realRoot, real, sep).some((s) => s.startsWith("."))



export class Scanner extends Effect.Service<Scanner>()("lxd-image-server/Scanner", {
  effect: Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path

    const openRoot = (imagesDir: string) =>
      Effect.gen(function* () {
        const rootInfo = yield* fs.stat(imagesDir).pipe(
          Effect.mapError(
            (e) =>
              new ImagesFolderError({
                path: imagesDir,
                reason: e._tag === "SystemError" && e.reason === "NotFound" ? "does not exist" : e.message
              })
          )
        )
        if (rootInfo.type !== "Directory") {
          return yield* Effect.fail(new ImagesFolderError({ path: imagesDir, reason: "is not a folder" }))
        }
        return yield* fs
          .realPath(imagesDir)
          .pipe(Effect.mapError((e) => new ImagesFolderError({ path: imagesDir, reason: e.message })))
      })

    /**
     * Lists a folder's entries with their kind, and for files their stat, following symlinks that stay inside
     * the images folder. Plain node:fs here: dirent types spare a stat per folder and a realpath per entry,
     * which over a thousand versions is the difference between 0.3 s and 3 s. Entries that vanish while being
     * read are left out: the tree is changing, and a later scan sees it.
     */
    const listNow = (realRoot: string, dir: string, rel: string, refusals: Array<Refusal>): Array<Entry> => {
      const dirents = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))
      const entries: Array<Entry> = []
      // `path.join(dir, name)` for a normalized `dir` (the scan's are): its normalizing cost 0.1 s a scan at
      // 10,000 versions
      const prefix = dir.endsWith(path.sep) ? dir : dir + path.sep
      for (const dirent of dirents) {
        const full = prefix + dirent.name
        const relName = rel ? `${rel}/${dirent.name}` : dirent.name
        const symlink = dirent.isSymbolicLink()
        if (symlink && dirent.name.startsWith(".")) continue
        let real: string | undefined
        if (symlink) {
          real = attempt(() => realpathSync(full))
          if (real === undefined) {
            // the link itself is there (else it vanished): it leads nowhere, or round in a loop
            if (attempt(() => lstatSync(full)) === undefined) continue
            const what = errorCode(() => statSync(full)) === "ELOOP" ? "a symlink loop" : "a dangling symlink"
            entries.push({ name: dirent.name, full, kind: "other", symlink, info: undefined, what })
            continue
          }
          if (!isWithin(realRoot, real, path.sep)) {
            refusals.push(refusal(relName, `symlink leading outside the images folder (to ${real})`))
            continue
          }
        }
        const needsStat = symlink || dirent.isFile()
        const info = needsStat ? attempt(() => statSync(full)) : undefined
        if (needsStat && info === undefined) continue
        const kind = info ? (info.isDirectory() ? "dir" : info.isFile() ? "file" : "other") : dirent.isDirectory() ? "dir" : "other"
        if (symlink && kind === "dir") {
          refusals.push(refusal(relName, symlinkedFolder(real!)))
          continue
        }
        if (symlink && hiddenBelow(realRoot, real!, path.sep)) {
          refusals.push(refusal(relName, `symlink into a hidden folder or file (${real}): uploads in progress are never published`))
          continue
        }
        entries.push({ name: dirent.name, full, kind, symlink, info, ...(real === undefined ? {} : { real }), ...(kind === "file" ? {} : { what: entryKind(info ?? dirent) }) })
      }
      return entries
    }

    /**
     * The regular files of a version folder and what they make; a bad symlink for an image file refuses it,
     * and so does a folder that cannot be read.
     */
    const readVersionNow = (realRoot: string, full: string, ref: VersionRef, relPath: string): FoundPlan | Refusal => {
      const files: Array<FoundFile> = []
      const refusals: Array<Refusal> = []
      let entries: Array<Entry>
      try {
        entries = listNow(realRoot, full, relPath, refusals)
      } catch (e) {
        return refusal(relPath, `cannot read folder: ${(e as Error).message}`)
      }
      const imageRefusal = refusals.find((r) => isCheckedFileName(r.path.slice(r.path.lastIndexOf("/") + 1)))
      if (imageRefusal) return imageRefusal
      // a fifo, folder or broken symlink under an image file's name: say what it is, not that the file is missing
      const odd = entries.find((e) => e.kind !== "file" && isCheckedFileName(e.name))
      if (odd) return refusal(`${relPath}/${odd.name}`, `${odd.name} is not a regular file (${odd.what})`)
      // root reads any file, a web server does not: one that no one may read would be published and never served
      const unreadable = entries.find((e) => e.kind === "file" && e.info !== undefined && (e.info.mode & 0o444) === 0 && isImageFileName(e.name))
      if (unreadable) {
        const mode = (unreadable.info!.mode & 0o777).toString(8).padStart(3, "0")
        return refusal(`${relPath}/${unreadable.name}`, `${unreadable.name} may be read by no one (mode ${mode}): no web server could serve it; chmod a+r it`)
      }
      for (const { name, full, kind, info, real } of entries) {
        if (kind !== "file" || !info || name.startsWith(".")) continue
        const into = real === undefined ? undefined : versionKeyOf(segmentsBelow(realRoot, real, path.sep).join("/"))
        // one shape for every file, link or not (a spread per file cost the scan of 10,000 versions)
        const linksInto = into === relPath ? undefined : into
        files.push({ name, path: full, size: info.size, dev: info.dev, ino: info.ino, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs, linksInto })
      }
      const plan = planVersion(ref, files)
      const yaml = files.find((f) => f.name === imageYamlName)
      if (plan._tag === "Refusal" || yaml === undefined) return plan
      const image = readImageYamlNow(yaml)
      return Either.isLeft(image) ? refusal(`${relPath}/${imageYamlName}`, image.left) : { ...plan, image: image.right }
    }

    /**
     * The whole tree, with node's synchronous calls (at 10,000 versions an Effect or a promise per folder
     * entry cost seconds), giving the event loop back every few hundred folders so that a server in the same
     * process (`serve`) keeps answering, and work started from `onPlan` (called with each version as it is
     * found) goes on meanwhile.
     */
    const scan = (imagesDir: string, onPlan?: (plan: FoundPlan) => void): Effect.Effect<ScanResult, ImagesFolderError> =>
      Effect.gen(function* () {
        const realRoot = yield* openRoot(imagesDir)
        const plans: Array<FoundPlan> = []
        const refusals: Array<Refusal> = []
        const skipped: Array<string> = []
        let folders = 0
        const walk = async (dir: string, segments: ReadonlyArray<string>): Promise<void> => {
          if (++folders % 256 === 0) await new Promise((resolve) => setImmediate(resolve))
          const rel = segments.join("/")
          let entries: Array<Entry>
          try {
            entries = listNow(realRoot, dir, rel, refusals)
          } catch (e) {
            // a folder below the root that cannot be read is refused, the rest of the tree goes on
            refusals.push(refusal(rel || ".", `cannot read folder: ${(e as Error).message}`))
            return
          }
          for (const { name, full, kind } of entries) {
            const relPath = rel ? `${rel}/${name}` : name
            if (kind !== "dir") {
              if (!name.startsWith(".")) skipped.push(`skipped ${relPath}: not a folder`)
              continue
            }
            if (segments.length < levels.length) {
              if (!name.startsWith(".")) await walk(full, [...segments, name])
              continue
            }
            const folder = versionFolderKind(name)
            if (folder !== "version") {
              skipped.push(`skipped ${relPath}: ${folder === "staging" ? "hidden folder (upload in progress)" : "version folders start with a YYYYMMDD date"}`)
              continue
            }
            if (++folders % 256 === 0) await new Promise((resolve) => setImmediate(resolve))
            const [os, release, arch, variant] = segments as [string, string, string, string]
            const plan = readVersionNow(realRoot, full, { os, release, arch, variant, version: name }, relPath)
            if (plan._tag === "Refusal") refusals.push(plan)
            else {
              plans.push(plan)
              onPlan?.(plan)
            }
          }
        }
        yield* Effect.promise(() => walk(path.normalize(imagesDir), []))
        const byPath = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
        plans.sort((a, b) => byPath(versionDir(a.ref), versionDir(b.ref)))
        refusals.sort((a, b) => byPath(a.path, b.path))
        skipped.sort()
        for (const line of skipped) yield* Effect.logDebug(line)
        return { plans, refusals }
      })

    /** Looks at one version folder, `os/release/arch/variant/version` under the images folder. */
    const scanVersion = (imagesDir: string, rel: string): Effect.Effect<VersionScan, ImagesFolderError> =>
      Effect.gen(function* () {
        const realRoot = yield* openRoot(imagesDir)
        const segments = rel.split("/")
        if (segments.length !== 5 || segments.some((s) => s === "" || s.startsWith("."))) return { _tag: "Absent" } as const
        const [os, release, arch, variant, version] = segments as [string, string, string, string, string]
        if (versionFolderKind(version) !== "version") return { _tag: "Absent" } as const
        const full = path.join(imagesDir, ...segments)
        const real = yield* Effect.promise(() => realpath(full).catch(() => undefined))
        if (real === undefined) return { _tag: "Absent" } as const
        if (!isWithin(realRoot, real, path.sep)) {
          return { _tag: "Refused", refusal: refusal(rel, `symlink leading outside the images folder (to ${real})`) } as const
        }
        if (real !== path.join(realRoot, ...segments)) {
          return { _tag: "Refused", refusal: refusal(rel, symlinkedFolder(real)) } as const
        }
        const info = yield* Effect.promise(() => stat(full).catch(() => undefined))
        if (!info?.isDirectory()) return { _tag: "Absent" } as const
        const plan = yield* Effect.sync(() => readVersionNow(realRoot, full, { os, release, arch, variant, version }, rel))
        return plan._tag === "Refusal" ? ({ _tag: "Refused", refusal: plan } as const) : ({ _tag: "Plan", plan } as const)
      })

    return { scan, scanVersion } as const
  })
}) {}
