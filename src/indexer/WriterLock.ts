/**
 * One writer at a time over a streams folder: `update` and `watch` both take this lock around each scan and
 * write, so neither writes over the other's newer result. The lock is a file holding the owner's pid, linked
 * into place (link(2) fails when it exists); a lock whose owner is gone (kill -9) is taken over.
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

/** The process exists (one of another user's counts too). */
export const processAlive = (pid: number) => {
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
    // the pid is written to a file of our own first, then linked into place: a reader never sees it half-written
    const mine = `${lockPath}.${process.pid}`
    yield* fs.writeFileString(mine, `${process.pid}\n`, { mode: 0o644 }).pipe(Effect.mapError((e) => fail(e.message)))
    yield* Effect.addFinalizer(() => fs.remove(mine).pipe(Effect.ignore))
    let told = false
    for (;;) {
      const taken = yield* fs.link(mine, lockPath).pipe(
        Effect.as(true),
        Effect.catchIf(
          (e) => e._tag === "SystemError" && e.reason === "AlreadyExists",
          () => Effect.succeed(false)
        ),
        Effect.mapError((e) => fail(e.message))
      )
      if (taken) break
      const holder = Number((yield* fs.readFileString(lockPath).pipe(Effect.orElseSucceed(() => ""))).trim())
      if (holder === process.pid) return yield* Effect.fail(fail("already held by this process"))
      const valid = Number.isInteger(holder) && holder > 0
      const age = yield* fs.stat(lockPath).pipe(
        Effect.map((i) => (i.mtime._tag === "Some" ? Date.now() - i.mtime.value.getTime() : 0)),
        Effect.orElseSucceed(() => 0)
      )
      if ((valid && !processAlive(holder)) || (!valid && age > 5000)) {
        // the owner died without releasing it (kill -9), or the file is not a lock of ours: take it over
        yield* fs.remove(lockPath).pipe(Effect.ignore)
        continue
      }
      if (!told && options.onWait) yield* options.onWait(holder)
      told = true
      yield* Effect.sleep(Duration.millis(100))
    }
    // released only while it is still ours
    yield* Effect.addFinalizer(() =>
      fs.readFileString(lockPath).pipe(
        Effect.flatMap((text) => (Number(text.trim()) === process.pid ? fs.remove(lockPath) : Effect.void)),
        Effect.ignore
      )
    )
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
