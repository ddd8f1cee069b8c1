/**
 * A file replaced whole or not at all: written to a temp file in the same folder (rename(2) is atomic only
 * within one filesystem), fsynced, given its mode (the umask may have narrowed it), then renamed over the
 * old one. A reader sees the old bytes or the new ones, never a torn file.
 */
import { FileSystem, Path } from "@effect/platform"
import { randomBytes } from "node:crypto"
import { Effect } from "effect"

/** `.name.3f2a…tmp`: what a kill -9 in the middle leaves behind. */
export const isAtomicTempOf = (name: string, target: string): boolean =>
  new RegExp(`^\\.${target.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.[0-9a-f]+\\.tmp$`).test(name)

export const writeFileAtomic = (target: string, text: string | Uint8Array, mode = 0o644) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const dir = path.dirname(target)
    const tmp = path.join(dir, `.${path.basename(target)}.${randomBytes(6).toString("hex")}.tmp`)
    yield* Effect.scoped(
      Effect.gen(function* () {
        const file = yield* fs.open(tmp, { flag: "wx", mode })
        const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text
        // writing nothing is no write at all: writeAll fails on an empty buffer (WriteZero)
        if (bytes.length > 0) yield* file.writeAll(bytes)
        yield* file.sync
      })
    ).pipe(
      Effect.zipRight(fs.chmod(tmp, mode)),
      Effect.zipRight(fs.rename(tmp, target)),
      Effect.onError(() => Effect.ignore(fs.remove(tmp)))
    )
    yield* Effect.scoped(Effect.flatMap(fs.open(dir, { flag: "r" }), (d) => d.sync)).pipe(Effect.ignore)
  })

/** Removes the temp files a kill -9 left beside `targets` in `dir`. */
export const removeStaleTemps = (dir: string, targets: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const names = yield* fs.readDirectory(dir)
    const stale = names.filter((n) => targets.some((t) => isAtomicTempOf(n, t)))
    yield* Effect.forEach(stale, (n) => fs.remove(path.join(dir, n)), { discard: true })
  }).pipe(Effect.ignore)
