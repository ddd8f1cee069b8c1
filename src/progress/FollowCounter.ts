/** Progress of work that reports nothing itself (a kernel copy, a worker's reads), followed by a counter it moves. */
import { Effect, Fiber, Schedule } from "effect"
import { type ProgressReporter, silentProgress } from "./Progress.js"

/**
 * Runs `work` while the progress advances by what `counter` grew, ten times a second and once at the end; the
 * counter is not looked at when no one shows progress.
 */
export const followCounter = <A, E, R>(progress: ProgressReporter, counter: () => number, work: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  if (progress === silentProgress) return work
  return Effect.suspend(() => {
    let reported = counter()
    const report = Effect.suspend(() => {
      const now = counter()
      const delta = now - reported
      reported = now
      return delta > 0 ? progress.advance(0, delta) : Effect.void
    })
    return Effect.gen(function* () {
      const poller = yield* Effect.fork(Effect.repeat(Effect.delay(report, "100 millis"), Schedule.forever))
      return yield* work.pipe(Effect.ensuring(Fiber.interrupt(poller).pipe(Effect.zipRight(report))))
    })
  })
}
