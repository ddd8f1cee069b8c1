/**
 * The platform's FileSystem, with a recursive `makeDirectory` that makes one level at a time. Node's own (its
 * mkdir -p, sync and async alike, in Node 20) retries forever when mkdir answers ENOENT under a parent that
 * exists, as /proc and /sys do: `prune --state-dir /proc/x` spun at full CPU and said nothing. Made here, each
 * missing level is made once, from the nearest one that exists, and a level that cannot be made is the
 * caller's error, as before.
 */
import { FileSystem, Path } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Layer } from "effect"

const is = (e: PlatformError, reason: string) => e._tag === "SystemError" && e.reason === reason

export const makeDirectoryByLevels = (fs: FileSystem.FileSystem, path: Path.Path): FileSystem.FileSystem["makeDirectory"] => {
  const make: FileSystem.FileSystem["makeDirectory"] = (dir, options) => {
    if (!options?.recursive) return fs.makeDirectory(dir, options)
    const { recursive: _, ...level } = options
    // what is there already is fine when it is a folder, as with mkdir -p; anything else keeps its error
    const one = fs.makeDirectory(dir, level).pipe(
      Effect.catchIf(
        (e) => is(e, "AlreadyExists"),
        (e) => Effect.flatMap(fs.stat(dir), (info) => (info.type === "Directory" ? Effect.void : Effect.fail(e)))
      )
    )
    const parent = path.dirname(dir)
    return one.pipe(Effect.catchIf((e) => is(e, "NotFound") && parent !== dir, () => Effect.zipRight(make(parent, options), one)))
  }
  return make
}

/** FileSystem with `makeDirectoryByLevels`, over the platform's. */
export const layer: Layer.Layer<FileSystem.FileSystem, never, FileSystem.FileSystem | Path.Path> = Layer.effect(
  FileSystem.FileSystem,
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    return { ...fs, makeDirectory: makeDirectoryByLevels(fs, path) }
  })
)
