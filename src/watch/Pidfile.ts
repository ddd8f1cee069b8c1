/** The pidfile of the running service, which `reload` reads to send SIGHUP. */
import { FileSystem, Path } from "@effect/platform"
import { Effect } from "effect"

export const defaultPidfile = "/run/lxd-image-server/lxd-image-server.pid"

/** Writes the pidfile for the scope's life; where it cannot, writes it in `fallbackDir` and says so. */
export const holdPidfile = (pidfile: string, fallbackDir: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const write = (file: string) =>
      fs.makeDirectory(path.dirname(file), { recursive: true }).pipe(
        Effect.zipRight(fs.writeFileString(file, `${process.pid}\n`, { mode: 0o644 })),
        Effect.as(file)
      )
    const written = yield* write(pidfile).pipe(
      Effect.catchAll((e) => {
        const fallback = path.join(fallbackDir, "lxd-image-server.pid")
        return Effect.logWarning(`cannot write the pidfile ${pidfile} (${e.message}): writing ${fallback} instead`).pipe(
          Effect.zipRight(write(fallback))
        )
      })
    )
    yield* Effect.addFinalizer(() => fs.remove(written).pipe(Effect.ignore))
    return written
  })
