/**
 * The folders `add` works in: the images and streams folders checked before any work, the hidden staging
 * folder beside a version folder (named by the adding process, so that one whose process is gone can be
 * told and removed), and the parent folders an add makes, removed again when it is refused.
 */
import { FileSystem, Path } from "@effect/platform"
import { rmdirSync } from "node:fs"
import { Effect } from "effect"
import { FoldersError, Indexer, type IndexerOptions } from "../indexer/Indexer.js"
import { processAlive } from "../indexer/WriterLock.js"

/**
 * The folders can hold a catalog clients read (Indexer.imagesPathFor) and the images folder is there: else a
 * FoldersError naming the folder, before anything is read or copied. Returns the images path of item paths.
 */
export const checkAddFolders = (folders: IndexerOptions) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const imagesPath = yield* (yield* Indexer).imagesPathFor(folders)
    const isFolder = (dir: string, what: string, mustExist: boolean) =>
      Effect.flatMap(Effect.either(fs.stat(dir)), (stat) =>
        stat._tag === "Left"
          ? mustExist ? Effect.fail(new FoldersError({ reason: `${what} ${path.resolve(dir)}: does not exist` })) : Effect.void
          : stat.right.type === "Directory" ? Effect.void : Effect.fail(new FoldersError({ reason: `${what} ${path.resolve(dir)}: not a folder` }))
      )
    yield* isFolder(folders.imagesDir, "images folder", true)
    yield* isFolder(folders.streamsDir, "streams folder", false)
    return imagesPath
  })

/** The staging folder of `version` made by process `pid`, beside the version folder (hidden from the scan). */
export const stagingName = (version: string, pid: number) => `.${version}.add-${pid}`

const stagingPattern = /^\..+\.add-(\d+)$/

/** Removes the staging folders in `dir` whose add is gone (it was killed mid-copy), each said in the log. */
export const removeStaleStaging = (dir: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const names = yield* fs.readDirectory(dir).pipe(Effect.orElseSucceed(() => [] as Array<string>))
    for (const name of names) {
      const pid = Number(stagingPattern.exec(name)?.[1] ?? Number.NaN)
      if (!Number.isSafeInteger(pid) || pid === process.pid || processAlive(pid)) continue
      const stale = path.join(dir, name)
      yield* fs.remove(stale, { recursive: true }).pipe(
        Effect.zipRight(Effect.logInfo(`removed ${stale}, the staging folder of an add that is gone (process ${pid})`)),
        Effect.catchAll((e) => Effect.logWarning(`could not remove ${stale}, the staging folder of an add that is gone: ${e.message}`))
      )
    }
  })

/** Makes `dir` and the folders above it up to `root`; returns those it made, deepest first. */
export const makeFolders = (dir: string, root: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const made: Array<string> = []
    for (let d = dir; d !== root && d !== path.dirname(d) && !(yield* fs.exists(d)); d = path.dirname(d)) made.push(d)
    yield* fs.makeDirectory(dir, { recursive: true })
    return made
  })

/** Removes the folders `makeFolders` made, deepest first, as long as they are empty (another add may use them). */
export const removeEmptyFolders = (made: ReadonlyArray<string>) =>
  Effect.sync(() => {
    for (const dir of made) {
      try {
        rmdirSync(dir)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") return
      }
    }
  })
