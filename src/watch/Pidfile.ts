/** The pidfile of the running service, which `reload` reads to send SIGHUP; and SIGHUP itself. */
import { FileSystem, Path } from "@effect/platform"
import { Data, Effect, Queue } from "effect"
import { readFileSync } from "node:fs"
import { processAlive } from "../indexer/WriterLock.js"


export class AlreadyRunning extends Data.TaggedError("AlreadyRunning")<{ readonly pid: number; readonly pidfile: string }> {
  override get message() {
    return `already running as process ${this.pid} (pidfile ${this.pidfile})`
  }
}

/**
 * The process lives and is this program (its command line names lxd-image-server): a pidfile left by a service
 * that died names a pid the system may give to any other process, and the state folder's survives a reboot.
 * Where /proc cannot tell, a live process counts.
 */
export const runsThisProgram = (pid: number): boolean => {
  if (!processAlive(pid)) return false
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "latin1").includes("lxd-image-server")
  } catch {
    return true
  }
}

/**
 * Writes the pidfile for the scope's life; where it cannot, writes it in `fallbackDir` and says so. A pidfile
 * naming another live process means the service already runs: that is an error, and its pidfile stays.
 */
export const holdPidfile = (pidfile: string, fallbackDir: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const write = (file: string) =>
      Effect.gen(function* () {
        const holder = Number((yield* fs.readFileString(file).pipe(Effect.orElseSucceed(() => ""))).trim())
        if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && runsThisProgram(holder)) {
          return yield* new AlreadyRunning({ pid: holder, pidfile: file })
        }
        yield* fs.makeDirectory(path.dirname(file), { recursive: true })
        yield* fs.writeFileString(file, `${process.pid}\n`, { mode: 0o644 })
        return file
      })
    const written = yield* write(pidfile).pipe(
      Effect.catchIf(
        (e) => e._tag !== "AlreadyRunning",
        (e) => {
          const fallback = path.join(fallbackDir, path.basename(pidfile))
          return Effect.logWarning(`cannot write the pidfile ${pidfile} (${e.message}): writing ${fallback} instead`).pipe(
            Effect.zipRight(write(fallback))
          )
        }
      )
    )
    yield* Effect.addFinalizer(() => fs.remove(written).pipe(Effect.ignore))
    return written
  })

/** SIGHUPs, as a queue, for the scope's life. While it lives, SIGHUP never kills the process. */
export const hangups = Effect.gen(function* () {
  const queue = yield* Queue.unbounded<void>()
  const onHup = () => Queue.unsafeOffer(queue, undefined)
  yield* Effect.acquireRelease(
    Effect.sync(() => process.on("SIGHUP", onHup)),
    () => Effect.sync(() => process.off("SIGHUP", onHup))
  )
  return queue
})
