/**
 * One writer at a time over a streams folder: `update` and `watch` both take this lock around each scan and
 * write, so neither writes over the other's newer result. The lock is a file created exclusively, holding the
 * owner's pid; a lock whose owner is gone (kill -9) is taken over.
 */
import { FileSystem, Path } from "@effect/platform"
import { Data, Duration, Effect, type Scope } from "effect"

export class LockError extends Data.TaggedError("LockError")<{ readonly path: string; readonly reason: string }> {
  override get message() {
    return `cannot take the writer lock ${this.path}: ${this.reason}`
  }
}

/** The lock beside `streams/v1`: `streams/.lxd-image-server.lock`. Hidden: the nginx site denies dotfiles. */
export const lockPathFor = (path: Path.Path, streamsDir: string) =>
  path.join(path.dirname(path.resolve(streamsDir)), ".lxd-image-server.lock")

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

export const acquireWriterLock = (
  streamsDir: string,
  options: { readonly onWait?: (holder: number) => Effect.Effect<void> } = {}
): Effect.Effect<void, LockError, FileSystem.FileSystem | Path.Path | Scope.Scope> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const lockPath = lockPathFor(path, streamsDir)
    const fail = (reason: string) => new LockError({ path: lockPath, reason })
    yield* fs.makeDirectory(path.dirname(lockPath), { recursive: true }).pipe(Effect.mapError((e) => fail(e.message)))
    let told = false
    for (;;) {
      const created = yield* fs.writeFileString(lockPath, `${process.pid}\n`, { flag: "wx", mode: 0o644 }).pipe(
        Effect.as(true),
        Effect.catchIf(
          (e) => e._tag === "SystemError" && e.reason === "AlreadyExists",
          () => Effect.succeed(false)
        ),
        Effect.mapError((e) => fail(e.message))
      )
      if (created) break
      const holder = Number((yield* fs.readFileString(lockPath).pipe(Effect.orElseSucceed(() => ""))).trim())
      if (holder === process.pid) return yield* Effect.fail(fail("already held by this process"))
      if (!Number.isInteger(holder) || holder <= 0 || !alive(holder)) {
        // the owner died without releasing it (or it is being written this instant: then the next try sees it)
        yield* fs.remove(lockPath).pipe(Effect.ignore)
        continue
      }
      if (!told && options.onWait) yield* options.onWait(holder)
      told = true
      yield* Effect.sleep(Duration.millis(100))
    }
    yield* Effect.addFinalizer(() => fs.remove(lockPath).pipe(Effect.ignore))
  })

/** Runs `effect` holding the writer lock of `streamsDir`. */
export const withWriterLock =
  (streamsDir: string) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.scoped(
      Effect.zipRight(
        acquireWriterLock(streamsDir, {
          onWait: (holder) => Effect.logInfo(`waiting for process ${holder}, which is writing the catalog`)
        }),
        effect
      )
    )
