/**
 * A file replaced whole or not at all: written to a temp file in the same folder (rename(2) is atomic only
 * within one filesystem), fsynced, given its mode (the umask may have narrowed it), then renamed over the
 * old one. A reader sees the old bytes or the new ones, never a torn file.
 */
import { FileSystem, Path } from "@effect/platform"
import { randomBytes } from "node:crypto"
import { writev } from "node:fs"
import { Effect } from "effect"

/** The most pieces one writev(2) takes (IOV_MAX on Linux). */
const iovMax = 1024

/**
 * Writes the pieces in order with writev(2), 1024 at a time: one system call where a write a piece would make
 * thousands (images.json is a piece per product), and no joined copy.
 */
const writeChunks = (fd: number, chunks: ReadonlyArray<Uint8Array>) =>
  Effect.async<void, Error>((resume) => {
    let queue = chunks.filter((c) => c.byteLength > 0)
    const next = (): void => {
      if (queue.length === 0) return resume(Effect.void)
      const batch = queue.slice(0, iovMax)
      writev(fd, batch, (error, written) => {
        if (error) return resume(Effect.fail(error))
        // a short write: what is left of the batch goes first next time
        let rest = written
        let i = 0
        while (i < batch.length && rest >= batch[i]!.byteLength) rest -= batch[i++]!.byteLength
        queue = [...(i < batch.length ? [batch[i]!.subarray(rest)] : []), ...batch.slice(i + 1), ...queue.slice(batch.length)]
        next()
      })
    }
    next()
  })

/** `.name.3f2a…tmp`: what a kill -9 in the middle leaves behind. */
export const isAtomicTempOf = (name: string, target: string): boolean =>
  new RegExp(`^\\.${target.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.[0-9a-f]+\\.tmp$`).test(name)

export const writeFileAtomic = (target: string, text: string | Uint8Array | ReadonlyArray<Uint8Array>, mode = 0o644) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const dir = path.dirname(target)
    const tmp = path.join(dir, `.${path.basename(target)}.${randomBytes(6).toString("hex")}.tmp`)
    yield* Effect.scoped(
      Effect.gen(function* () {
        const file = yield* fs.open(tmp, { flag: "wx", mode })
        // writing nothing is no write at all: writeAll fails on an empty buffer (WriteZero)
        if (typeof text === "string" || text instanceof Uint8Array) {
          const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text
          if (bytes.length > 0) yield* file.writeAll(bytes)
        } else yield* writeChunks(file.fd, text)
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
