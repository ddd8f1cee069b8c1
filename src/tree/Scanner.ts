/**
 * Walks the images folder: `{os}/{release}/{arch}/{variant}/{version}/` and the regular files of each version,
 * with what the hasher needs to know a file again (inode, size, mtime). A path that leads outside the images
 * folder through a symlink is refused; hidden folders (uploads in progress) and stray names are skipped.
 */
import { FileSystem, Path } from "@effect/platform"
import { isPlatformError } from "@effect/platform/Error"
import { Data, Effect, Option } from "effect"
import {
  type FileEntry,
  planVersion,
  type Refusal,
  refusal,
  type VersionPlan,
  type VersionRef,
  versionFolderKind
} from "./Layout.js"

/** A file of a version as found on disk. */
export interface FoundFile extends FileEntry {
  /** Absolute path. */
  readonly path: string
  readonly ino: number
  readonly dev: number
  readonly mtimeMs: number
}

export type FoundPlan = VersionPlan<FoundFile>

export interface ScanResult {
  readonly plans: ReadonlyArray<FoundPlan>
  readonly refusals: ReadonlyArray<Refusal>
}

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

export class Scanner extends Effect.Service<Scanner>()("lxd-image-server/Scanner", {
  effect: Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path

    /**
     * Lists a folder's entries as [name, info], following symlinks that stay inside the images folder.
     * Entries that vanish while being read are left out: the tree is changing under us, and a later scan sees it.
     */
    const list = (realRoot: string, dir: string, rel: string, refusals: Array<Refusal>) =>
      Effect.gen(function* () {
        const names = (yield* fs.readDirectory(dir)).sort()
        const out: Array<readonly [string, FileSystem.File.Info, string]> = []
        for (const name of names) {
          const full = path.join(dir, name)
          const relPath = rel ? `${rel}/${name}` : name
          const real = yield* fs.realPath(full).pipe(Effect.option)
          if (Option.isNone(real)) {
            if (!name.startsWith(".")) yield* Effect.logDebug(`skipped ${relPath}: dangling symlink or vanished`)
            continue
          }
          if (real.value !== realRoot && !real.value.startsWith(realRoot + path.sep)) {
            refusals.push(refusal(relPath, `symlink leading outside the images folder (to ${real.value})`))
            continue
          }
          const info = yield* fs.stat(full).pipe(Effect.option)
          if (Option.isSome(info)) out.push([name, info.value, full] as const)
        }
        return out
      })

    const scan = (imagesDir: string): Effect.Effect<ScanResult, ImagesFolderError> =>
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
        if (rootInfo.type !== "Directory") return yield* Effect.fail(new ImagesFolderError({ path: imagesDir, reason: "is not a folder" }))
        const realRoot = yield* fs.realPath(imagesDir).pipe(Effect.mapError((e) => new ImagesFolderError({ path: imagesDir, reason: e.message }))
        )
        const plans: Array<FoundPlan> = []
        const refusals: Array<Refusal> = []

        const walk = (dir: string, segments: ReadonlyArray<string>): Effect.Effect<void, unknown> =>
          Effect.gen(function* () {
            const rel = segments.join("/")
            const entries = yield* list(realRoot, dir, rel, refusals)
            for (const [name, info, full] of entries) {
              const relPath = rel ? `${rel}/${name}` : name
              if (segments.length < levels.length) {
                if (name.startsWith(".")) continue
                if (info.type !== "Directory") {
                  yield* Effect.logDebug(`skipped ${relPath}: not a folder at the ${levels[segments.length]} level`)
                  continue
                }
                yield* walk(full, [...segments, name])
                continue
              }
              if (info.type !== "Directory") {
                yield* Effect.logDebug(`skipped ${relPath}: a file where version folders belong`)
                continue
              }
              const kind = versionFolderKind(name)
              if (kind === "staging") {
                yield* Effect.logDebug(`skipped ${relPath}: hidden folder (upload in progress)`)
                continue
              }
              if (kind === "other") {
                yield* Effect.logDebug(`skipped ${relPath}: version folders start with a YYYYMMDD date`)
                continue
              }
              const [os, release, arch, variant] = segments as [string, string, string, string]
              const ref: VersionRef = { os, release, arch, variant, version: name }
              const files: Array<FoundFile> = []
              for (const [fileName, fileInfo, filePath] of yield* list(realRoot, full, relPath, refusals)) {
                if (fileInfo.type !== "File" || fileName.startsWith(".")) continue
                files.push({
                  name: fileName,
                  path: filePath,
                  size: Number(fileInfo.size),
                  ino: Option.getOrElse(fileInfo.ino, () => 0),
                  dev: fileInfo.dev,
                  mtimeMs: Option.match(fileInfo.mtime, { onNone: () => 0, onSome: (d) => d.getTime() })
                })
              }
              const plan = planVersion(ref, files)
              if (plan._tag === "Refusal") refusals.push(plan)
              else plans.push(plan)
            }
          }).pipe(
            // a folder below the root that cannot be read is refused, the rest of the tree goes on
            Effect.catchIf(isPlatformError, (e) =>
              Effect.sync(() => {
                refusals.push(refusal(segments.join("/") || ".", `cannot read folder: ${e.message}`))
              })
            )
          )

        yield* walk(imagesDir, []).pipe(Effect.orDie)
        return { plans, refusals }
      })

    return { scan } as const
  })
}) {}
