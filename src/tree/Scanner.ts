/**
 * Walks the images folder: `{os}/{release}/{arch}/{variant}/{version}/` and the regular files of each version,
 * with what the hasher needs to know a file again (device, inode, size, mtime). A path that leads outside the
 * images folder through a symlink is refused; hidden folders (uploads in progress) and stray names are skipped.
 */
import { FileSystem, Path } from "@effect/platform"
import { Data, Effect } from "effect"
import type { Stats } from "node:fs"
import { readdir, realpath, stat } from "node:fs/promises"
import { type FileIdentity, sameIdentity } from "./Identity.js"
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

interface Entry {
  readonly name: string
  readonly full: string
  readonly kind: "dir" | "file" | "other"
  /** The entry itself is a symlink (to a place inside the images folder). */
  readonly symlink: boolean
  /** For files (and whatever a symlink leads to). */
  readonly info: Stats | undefined
}

/**
 * Why a folder reached through a symlink is refused: the file watcher does not follow symlinks, so changes
 * under it would arrive on the target's path or not at all, and what is published would go stale.
 */
const symlinkedFolder = (real: string) =>
  `a symlink to a folder (${real}): changes inside it are not seen; use a real folder or a bind mount`

/** A path below the images folder with a hidden segment: an upload in progress, never published under any name. */
const hiddenBelow = (realRoot: string, real: string, sep: string) =>
  real.slice(realRoot.length + 1).split(sep).some((s) => s.startsWith("."))

class FolderReadError extends Data.TaggedError("FolderReadError")<{ readonly path: string; readonly reason: string }> {}

/** The same file, unchanged: what a cached hash is keyed by. */
export const sameFile = (a: FoundFile, b: FoundFile): boolean => sameIdentity(a, b)

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
    const list = (realRoot: string, dir: string, rel: string, refusals: Array<Refusal>) =>
      Effect.tryPromise({
        try: async () => {
          const dirents = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))
          // the stats run at once: over a thousand versions, one round trip at a time is what costs
          const entries = await Promise.all(
            dirents.map(async (dirent): Promise<Entry | undefined> => {
              const full = path.join(dir, dirent.name)
              const relName = rel ? `${rel}/${dirent.name}` : dirent.name
              const symlink = dirent.isSymbolicLink()
              if (symlink && dirent.name.startsWith(".")) return undefined
              let real: string | undefined
              if (symlink) {
                real = await realpath(full).catch(() => undefined)
                if (real === undefined) return undefined
                if (!isWithin(realRoot, real, path.sep)) {
                  refusals.push(refusal(relName, `symlink leading outside the images folder (to ${real})`))
                  return undefined
                }
              }
              const needsStat = symlink || dirent.isFile()
              const info = needsStat ? await stat(full).catch(() => undefined) : undefined
              if (needsStat && info === undefined) return undefined
              const kind = info ? (info.isDirectory() ? "dir" : info.isFile() ? "file" : "other") : dirent.isDirectory() ? "dir" : "other"
              if (symlink && kind === "dir") {
                refusals.push(refusal(relName, symlinkedFolder(real!)))
                return undefined
              }
              if (symlink && hiddenBelow(realRoot, real!, path.sep)) {
                refusals.push(refusal(relName, `symlink into a hidden folder or file (${real}): uploads in progress are never published`))
                return undefined
              }
              return { name: dirent.name, full, kind, symlink, info }
            })
          )
          return entries.filter((e): e is Entry => e !== undefined)
        },
        catch: (e) => new FolderReadError({ path: dir, reason: (e as Error).message })
      })

    /** The regular files of a version folder and what they make; a file leading outside refuses the version. */
    const readVersion = (realRoot: string, full: string, ref: VersionRef, relPath: string) =>
      Effect.gen(function* () {
        const files: Array<FoundFile> = []
        const refusals: Array<Refusal> = []
        const entries = yield* list(realRoot, full, relPath, refusals)
        // a bad symlink refuses the version when it stands for one of its image files; other files are ignored
        const imageRefusal = refusals.find((r) => isImageFileName(r.path.slice(r.path.lastIndexOf("/") + 1)))
        if (imageRefusal) return imageRefusal
        for (const { name, full, kind, info } of entries) {
          if (kind !== "file" || !info || name.startsWith(".")) continue
          files.push({ name, path: full, size: info.size, dev: info.dev, ino: info.ino, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs })
        }
        return planVersion(ref, files)
      })

    const scan = (imagesDir: string): Effect.Effect<ScanResult, ImagesFolderError> =>
      Effect.gen(function* () {
        const realRoot = yield* openRoot(imagesDir)
        const plans: Array<FoundPlan> = []
        const refusals: Array<Refusal> = []

        const walk = (dir: string, segments: ReadonlyArray<string>): Effect.Effect<void> =>
          Effect.gen(function* () {
            const rel = segments.join("/")
            const entries = yield* list(realRoot, dir, rel, refusals)
            // sibling folders are read at once; results are sorted at the end, so the order stays the same
            yield* Effect.forEach(entries, ({ name, full, kind }) => Effect.gen(function* () {
              const relPath = rel ? `${rel}/${name}` : name
              if (kind !== "dir") {
                if (!name.startsWith(".")) yield* Effect.logDebug(`skipped ${relPath}: not a folder`)
                return
              }
              if (segments.length < levels.length) {
                if (!name.startsWith(".")) yield* walk(full, [...segments, name])
                return
              }
              const folder = versionFolderKind(name)
              if (folder !== "version") {
                yield* Effect.logDebug(
                  `skipped ${relPath}: ${folder === "staging" ? "hidden folder (upload in progress)" : "version folders start with a YYYYMMDD date"}`
                )
                return
              }
              const [os, release, arch, variant] = segments as [string, string, string, string]
              const plan = yield* readVersion(realRoot, full, { os, release, arch, variant, version: name }, relPath)
              if (plan._tag === "Refusal") refusals.push(plan)
              else plans.push(plan)
            }), { concurrency: 16, discard: true })
          }).pipe(
            // a folder below the root that cannot be read is refused, the rest of the tree goes on
            Effect.catchTag("FolderReadError", (e) =>
              Effect.sync(() => {
                refusals.push(refusal(segments.join("/") || ".", `cannot read folder: ${e.reason}`))
              })
            )
          )

        yield* walk(imagesDir, [])
        const byPath = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
        plans.sort((a, b) => byPath(versionDir(a.ref), versionDir(b.ref)))
        refusals.sort((a, b) => byPath(a.path, b.path))
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
        const plan = yield* readVersion(realRoot, full, { os, release, arch, variant, version }, rel).pipe(
          Effect.catchTag("FolderReadError", (e) => Effect.succeed(refusal(rel, `cannot read folder: ${e.reason}`)))
        )
        return plan._tag === "Refusal" ? ({ _tag: "Refused", refusal: plan } as const) : ({ _tag: "Plan", plan } as const)
      })

    return { scan, scanVersion } as const
  })
}) {}
