/**
 * Deletes the files of withdrawn versions and of dangling uploads, and nothing else: only below the images
 * folder, only a folder reached with no symlink on the way (its real path is the path asked for), and never
 * following a symlink inside it (a symlink is removed, not what it leads to). A version's files are deleted
 * only while they are the files that were withdrawn: a new upload in their place is never deleted.
 */
import { lstatSync, readdirSync, realpathSync, rmSync, statSync } from "node:fs"
import { join, sep } from "node:path"
import { Data, Effect } from "effect"
import { type FileIdentity, identityOf, sameIdentity } from "../tree/Identity.js"

export class DeleteError extends Data.TaggedError("DeleteError")<{ readonly path: string; readonly reason: string }> {
  override get message() {
    return `cannot delete ${this.path}: ${this.reason}`
  }
}

export type DeleteOutcome =
  /** Deleted, with the folder. */
  | "deleted"
  /** There was nothing to delete. */
  | "gone"
  /** The folder holds other files than those withdrawn (a new upload): left alone. */
  | "changed"

const code = (e: unknown) => (e as NodeJS.ErrnoException).code

/** A relative folder below the images folder with no empty, `.` or `..` segment. */
const safeRelative = (rel: string) => rel !== "" && rel.split("/").every((s) => s !== "" && s !== "." && s !== "..")

/** The newest modification time of anything below a folder (symlinks themselves, not what they lead to). */
const newestMtime = (dir: string): number => {
  let newest = lstatSync(dir).mtimeMs
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : lstatSync(full).mtimeMs)
  }
  return newest
}

export class Deleter extends Effect.Service<Deleter>()("lxd-image-server/Deleter", {
  succeed: {
    /**
     * Deletes the version folder `key` below `imagesDir` if it still holds the files `files` (by name and
     * identity; files beside them, like SHA256SUMS, go with the folder). The folders above it stay: an upload
     * may be creating a sibling in them right now.
     */
    deleteVersion: (imagesDir: string, key: string, files: ReadonlyArray<FileIdentity>): Effect.Effect<DeleteOutcome, DeleteError> =>
      Effect.try({
        try: (): DeleteOutcome => {
          const target = checkedFolder(imagesDir, key)
          if (target === undefined) return "gone"
          for (const f of files) {
            let now: FileIdentity
            try {
              now = identityOf(f.name, statSync(join(target, f.name)))
            } catch (e) {
              if (code(e) === "ENOENT") continue
              throw e
            }
            if (!sameIdentity(now, f)) return "changed"
          }
          rmSync(target, { recursive: true, force: true })
          return "deleted"
        },
        catch: (e) => new DeleteError({ path: join(imagesDir, key), reason: (e as Error).message })
      }),

    /** Deletes a folder below the images folder (a dangling upload). */
    deleteFolder: (imagesDir: string, rel: string): Effect.Effect<DeleteOutcome, DeleteError> =>
      Effect.try({
        try: (): DeleteOutcome => {
          const target = checkedFolder(imagesDir, rel)
          if (target === undefined) return "gone"
          rmSync(target, { recursive: true, force: true })
          return "deleted"
        },
        catch: (e) => new DeleteError({ path: join(imagesDir, rel), reason: (e as Error).message })
      }),

    /** The newest modification time below a folder of the images folder, or undefined when it is gone. */
    newestChange: (imagesDir: string, rel: string): Effect.Effect<number | undefined, DeleteError> =>
      Effect.try({
        try: () => {
          const target = checkedFolder(imagesDir, rel)
          return target === undefined ? undefined : newestMtime(target)
        },
        catch: (e) => new DeleteError({ path: join(imagesDir, rel), reason: (e as Error).message })
      })
  }
}) {}

/**
 * The folder's path when it exists and is reached with no symlink (its real path is the images folder's real
 * path joined with `rel`); undefined when it does not exist. Throws for anything else.
 */
const checkedFolder = (imagesDir: string, rel: string): string | undefined => {
  if (!safeRelative(rel)) throw new Error(`not a folder below the images folder: ${JSON.stringify(rel)}`)
  const root = realpathSync(imagesDir)
  const target = join(root, ...rel.split("/"))
  let info
  try {
    info = lstatSync(target)
  } catch (e) {
    if (code(e) === "ENOENT") return undefined
    throw e
  }
  if (!info.isDirectory()) throw new Error("not a folder (a symlink?): left alone")
  const real = realpathSync(target)
  if (real !== target || !real.startsWith(root + sep)) throw new Error(`reached through a symlink (it is ${real}): left alone`)
  return target
}
