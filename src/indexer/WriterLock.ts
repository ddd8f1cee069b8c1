/**
 * One writer at a time over a streams folder: `update` and `watch` both take this lock around each scan and
 * write, so neither writes over the other's newer result.
 *
 * The lock is flock(2) on `streams/.lxd-image-server.lock`. Node has no flock and the package builds nothing
 * native, so util-linux's flock(1) takes it on a descriptor we open and hand it as its fd 3: the lock belongs
 * to the open file description, which the child shares with us, so it stays ours after the child exits,
 * until we close the descriptor or die. The kernel then lets go of it, even after kill -9: there is no stale
 * lock to take over, and no takeover to race. Node opens files close-on-exec, so no other child of ours (tar,
 * xz, nginx) keeps the description, and the lock, alive.
 *
 * The file is never deleted (a taker that opened the old file would lock a name nobody else sees); it only
 * holds the holder's pid, for the message of those who wait. A process of a version before this one (link(2)
 * and a pid file) does not see this lock: stop the old service before the new one writes.
 */
import { FileSystem, Path } from "@effect/platform"
import { Data, Effect, ExecutionStrategy, Exit, Scope } from "effect"
import { spawn } from "node:child_process"
import { ftruncateSync, writeSync } from "node:fs"
import { type ForkHelper, startForkHelper } from "../process/ForkHelper.js"

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

// flock(1) exits 1 by default when the lock is taken, as it does for some of its own failures: ask for a
// status of its own (EX_TEMPFAIL, which flock does not use otherwise)
const busyStatus = 75

/**
 * flock(1) on our descriptor `fd`: "taken", or "busy" when `wait` is false and another holds the lock.
 * Interrupted, the child is killed and awaited: a wait leaves no process behind. Were the lock taken just
 * before, it is ours through `fd`, and closing `fd` lets go of it.
 */
const flock = (fd: number, wait: boolean) =>
  Effect.async<"taken" | "busy", string>((resume) => {
    const args = ["--exclusive", ...(wait ? [] : ["--nonblock", "--conflict-exit-code", String(busyStatus)]), "3"]
    const child = spawn("flock", args, { stdio: ["ignore", "ignore", "pipe", fd] })
    let stderr = ""
    let closed = false
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()))
    // a child that could not start reports "error", and may report "close" too: the first answer counts
    const answer = (outcome: Effect.Effect<"taken" | "busy", string>) => {
      if (closed) return
      closed = true
      resume(outcome)
    }
    child.once("error", (e) => answer(Effect.fail(`cannot run flock (util-linux): ${e.message}`)))
    child.once("close", (code, signal) =>
      answer(
        code === 0
          ? Effect.succeed("taken")
          : code === busyStatus && !wait
            ? Effect.succeed("busy")
            : Effect.fail(`flock failed (${signal ?? `status ${code}`}): ${stderr.trim() || "no message"}`)
      )
    )
    return Effect.async<void>((done) => {
      if (closed || child.pid === undefined) return done(Effect.void)
      child.once("close", () => done(Effect.void))
      child.kill("SIGKILL")
    })
  })

/**
 * The pid a file names (the lock file, a pidfile), if that process lives (`alive`: a pidfile asks that it be
 * this program too): between a lock taker's flock and its write, it may not.
 */
export const holderOf = (fs: FileSystem.FileSystem, file: string, alive: (pid: number) => boolean = processAlive) =>
  fs.readFileString(file).pipe(
    Effect.map((text) => Number(text.trim())),
    Effect.map((pid) => (Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined)),
    Effect.orElseSucceed(() => undefined)
  )

export interface WriterLockOptions {
  /** Told once, when the lock is taken by another (`holder`, when its pid is known) and we wait. */
  readonly onWait?: (holder: number | undefined) => Effect.Effect<void>
}

const acquireWith = (
  fs: FileSystem.FileSystem,
  path: Path.Path,
  streamsDir: string,
  options: WriterLockOptions
): Effect.Effect<void, LockError, Scope.Scope> =>
  Effect.gen(function* () {
    const lockPath = lockPathFor(path, streamsDir)
    const fail = (reason: string) => new LockError({ path: lockPath, reason })
    yield* fs.makeDirectory(path.dirname(lockPath), { recursive: true }).pipe(Effect.mapError((e) => fail(e.message)))
    // a descriptor of our own, even when this process holds the lock already: a second taker here waits too.
    // Its own scope closes it as soon as the attempt fails or is interrupted, not when the caller's scope ends.
    const outer = yield* Effect.scope
    const scope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
    yield* Effect.gen(function* () {
      // read-write to write our pid, created if missing; never truncated by opening (a holder's pid stays)
      const file = yield* fs.open(lockPath, { flag: "a+", mode: 0o644 }).pipe(Effect.mapError((e) => fail(e.message)))
      const first = yield* flock(file.fd, false).pipe(Effect.mapError(fail))
      if (first === "busy") {
        if (options.onWait) yield* options.onWait(yield* holderOf(fs, lockPath))
        yield* flock(file.fd, true).pipe(Effect.mapError(fail))
      }
      // only for the message of those who wait: a failed write takes nothing from the lock
      yield* file.truncate(0).pipe(
        Effect.zipRight(file.writeAll(new TextEncoder().encode(`${process.pid}\n`))),
        Effect.ignore
      )
    }).pipe(
      Scope.extend(scope),
      Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause)))
    )
  })

/** Takes the writer lock of `streamsDir` for the life of the scope; waits while another holds it. */
export const acquireWriterLock = (
  streamsDir: string,
  options: WriterLockOptions = {}
): Effect.Effect<void, LockError, FileSystem.FileSystem | Path.Path | Scope.Scope> =>
  Effect.gen(function* () {
    yield* acquireWith(yield* FileSystem.FileSystem, yield* Path.Path, streamsDir, options)
  })

const sayWaiting = (holder: number | undefined) =>
  Effect.logInfo(`waiting for ${holder === undefined ? "another process" : `process ${holder}`}, which is writing the catalog`)

/** Runs `effect` holding the writer lock of `streamsDir`. */
export const withWriterLock =
  (streamsDir: string) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.scoped(Effect.zipRight(acquireWriterLock(streamsDir, { onWait: sayWaiting }), effect))

interface Session {
  /** Our descriptor of the lock file, open while the session lasts; the helper's fd 3 shares its description. */
  readonly fd: number
  readonly helper: ForkHelper
  readonly scope: Scope.CloseableScope
}

/**
 * The catalog's lock as a service, to be replaced where the folder is not the place to lock.
 *
 * A long-running writer (`watch` takes the lock for every turn, and says so with `prepare`) takes it through a
 * fork helper (see ForkHelper): the helper's fd 3 is the same open file description as our descriptor of the
 * lock file, kept open for the service's life, and it calls flock(2) on it with no child process. The lock is
 * still ours, held by that description: the helper gone, our descriptor keeps it until we close it; we gone,
 * the helper sees the end of its input and exits, and the kernel lets go. Only a wait for another writer still
 * runs flock(1), on our descriptor. Takers in this process queue on a semaphore, since they share the
 * description. A lock not prepared (`update`, `add`, `prune`, `mirror push` take it once), or prepared where
 * perl cannot start, is taken as `acquireWriterLock` takes it: a descriptor of its own and one flock(1), which
 * starts in 2–3 ms where perl takes 20–30.
 */
export class WriterLock extends Effect.Service<WriterLock>()("lxd-image-server/WriterLock", {
  scoped: Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const serviceScope = yield* Effect.scope
    const sessions = new Map<string, Session | "none">()
    const queues = new Map<string, Effect.Semaphore>()

    const queueFor = (lockPath: string) => {
      let q = queues.get(lockPath)
      if (!q) queues.set(lockPath, (q = Effect.unsafeMakeSemaphore(1)))
      return q
    }

    /** The lock files `prepare` was called for: only their takings go through a session. */
    const prepared = new Set<string>()

    /**
     * The session of a prepared lock file, started at its first use and again once its helper is gone; "none"
     * when the helper cannot run here, `undefined` when the lock was not prepared.
     */
    const sessionFor = (lockPath: string, fail: (reason: string) => LockError) =>
      Effect.gen(function* () {
        if (!prepared.has(lockPath)) return undefined
        const known = sessions.get(lockPath)
        if (known === "none" || (known && known.helper.alive())) return known
        if (known) yield* drop(lockPath, known)
        yield* fs.makeDirectory(path.dirname(lockPath), { recursive: true }).pipe(Effect.mapError((e) => fail(e.message)))
        const scope = yield* Scope.fork(serviceScope, ExecutionStrategy.sequential)
        const started = yield* Effect.gen(function* () {
          const file = yield* fs.open(lockPath, { flag: "a+", mode: 0o644 }).pipe(Effect.mapError((e) => fail(e.message)))
          const helper = yield* Effect.either(startForkHelper(file.fd))
          return helper._tag === "Right" ? { fd: file.fd, helper: helper.right, scope } : undefined
        }).pipe(Scope.extend(scope), Effect.onError(() => Scope.close(scope, Exit.void)))
        if (!started) yield* Scope.close(scope, Exit.void)
        const session = started ?? ("none" as const)
        sessions.set(lockPath, session)
        return session
      })

    /** Ends a session: the helper and our descriptor closed, and with them any lock they held. */
    const drop = (lockPath: string, session: Session) =>
      Effect.suspend(() => {
        if (sessions.get(lockPath) === session) sessions.delete(lockPath)
        return Scope.close(session.scope, Exit.void)
      })

    const acquireShared = (lockPath: string, session: Session, fail: (reason: string) => LockError) =>
      Effect.gen(function* () {
        // first, so that a taking interrupted anywhere lets go (LOCK_UN of a lock not held does nothing; the
        // helper answers in order, so it comes after any flock of ours)
        yield* Effect.addFinalizer(() => session.helper.unlock.pipe(Effect.catchAll(() => drop(lockPath, session))))
        const first = yield* session.helper.tryLock.pipe(Effect.mapError(fail))
        if (first === "busy") {
          yield* sayWaiting(yield* holderOf(fs, lockPath))
          yield* flock(session.fd, true).pipe(Effect.mapError(fail))
        }
        // only for the message of those who wait: a failed write takes nothing from the lock
        yield* Effect.sync(() => {
          try {
            ftruncateSync(session.fd, 0)
            writeSync(session.fd, `${process.pid}\n`)
          } catch {}
        })
      })

    return {
      /**
       * Takes `streamsDir`'s lock through a fork helper from now on, and starts the helper now: `watch` calls
       * it at start, while the process is small (see ForkHelper). A failure is left for the first taking to
       * report.
       */
      prepare: (streamsDir: string): Effect.Effect<void> => {
        const lockPath = lockPathFor(path, streamsDir)
        return queueFor(lockPath)
          .withPermits(1)(
            Effect.suspend(() => {
              prepared.add(lockPath)
              return sessionFor(lockPath, (reason) => new LockError({ path: lockPath, reason }))
            })
          )
          .pipe(Effect.asVoid, Effect.ignore)
      },
      withLock:
        (streamsDir: string) =>
        <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | LockError, R> => {
          const lockPath = lockPathFor(path, streamsDir)
          const fail = (reason: string) => new LockError({ path: lockPath, reason })
          return queueFor(lockPath).withPermits(1)(
            Effect.scoped(
              Effect.gen(function* () {
                const session = yield* sessionFor(lockPath, fail)
                if (session === undefined || session === "none") yield* acquireWith(fs, path, streamsDir, { onWait: sayWaiting })
                else yield* acquireShared(lockPath, session, fail)
                return yield* effect
              })
            )
          )
        }
    }
  })
}) {}
