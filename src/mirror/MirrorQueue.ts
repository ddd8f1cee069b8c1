/**
 * Each mirror's own queue, for `watch`: a generation committed wakes the mirror's pusher, which sends the newest
 * catalog (generations committed during a push are coalesced into the next one); a failed push is tried again
 * after a capped exponential backoff. Publishing never waits for a mirror, and one mirror never waits for another.
 * `pushOnce` is one push as `watch` and `mirror push` both make it.
 */
import { Clock, Duration, Effect, identity, Queue } from "effect"
import { processAlive } from "../indexer/WriterLock.js"
import { Generations } from "../publish/Generations.js"
import type { MirrorTarget } from "./MirrorConfig.js"
import { MirrorPush, type MirrorPushError, type PushContext } from "./MirrorPush.js"
import { type Backoff, defaultBackoff, failed, forgetDeadPusher, type MirrorState, offered, started, stopped, succeeded } from "./MirrorState.js"

/** What a mirror's pusher needs from the world: replaced in tests. */
export interface MirrorDriver {
  /**
   * Applies a change to the mirror's state as it is recorded now (another process may push to the mirror and
   * record too), and answers the new state.
   */
  readonly update: (change: (s: MirrorState) => MirrorState) => Effect.Effect<MirrorState>
  /** Runs `effect` holding the mirror: one push to it at a time, across processes. */
  readonly exclusive: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E | MirrorPushError>
  /** Pushes the newest catalog (holding the mirror); answers the products of the index pushed. */
  readonly push: (indexBefore: ReadonlyArray<string> | null) => Effect.Effect<ReadonlyArray<string>, MirrorPushError>
}

export interface PushOutcome {
  /** The mirror's state as recorded after the push. */
  readonly state: MirrorState
  /** The generation the push was recorded as. */
  readonly generation: number
  readonly error: MirrorPushError | undefined
}

/**
 * One push, recorded: marked as pushing, then, holding the mirror, the state as it is then (what the mirror's
 * index names, after whatever push came before) decides what the push takes out of the index first, and the
 * outcome is recorded before the mirror is let go. The push is recorded as the newest generation offered, or
 * `floor` when that is newer (`mirror push` knows the primary's generation from its status file).
 */
export const pushOnce = (driver: MirrorDriver, options: { readonly floor?: number; readonly backoff?: Backoff } = {}) =>
  Effect.gen(function* () {
    const pid = process.pid
    yield* driver.update((s) => started(s, pid))
    const pushed = driver.exclusive(
      Effect.gen(function* () {
        const before = yield* driver.update(identity)
        const generation = Math.max(before.wanted ?? 0, options.floor ?? 0)
        const result = yield* Effect.either(driver.push(before.index_products))
        const now = yield* Clock.currentTimeMillis
        const state = yield* driver.update((s) =>
          result._tag === "Right" ? succeeded(s, generation, now, result.right, pid) : failed(s, result.left.message, now, options.backoff, pid)
        )
        return { state, generation, error: result._tag === "Left" ? result.left : undefined } satisfies PushOutcome
      })
    )
    return yield* pushed.pipe(
      // the mirror could not be held (its lock): a failed push like any other
      Effect.catchAll((error) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const state = yield* driver.update((s) => failed(s, error.message, now, options.backoff, pid))
          return { state, generation: state.wanted ?? 0, error } satisfies PushOutcome
        })
      ),
      Effect.onInterrupt(() => driver.update((s) => stopped(s, pid)))
    )
  })

/**
 * Starts a mirror's pusher in the current scope; returns how to offer it a generation. Offering never waits:
 * the wake-up queue holds one signal at most.
 */
export const startMirror = (name: string, driver: MirrorDriver, backoff: Backoff = defaultBackoff) =>
  Effect.gen(function* () {
    // a mark left by a pusher killed earlier (this service before a kill -9) goes; a live one's stays
    let state = yield* driver.update((s) => forgetDeadPusher(s, processAlive))
    const wake = yield* Queue.sliding<true>(1)

    const pushNewest = Effect.gen(function* () {
      for (;;) {
        yield* Queue.takeAll(wake)
        const startedAt = yield* Clock.currentTimeMillis
        const outcome = yield* pushOnce(driver, { backoff })
        state = outcome.state
        const now = yield* Clock.currentTimeMillis
        if (outcome.error === undefined) {
          yield* Effect.logInfo(`mirror ${name}: generation ${outcome.generation} pushed in ${((now - startedAt) / 1000).toFixed(2)} s`)
          return
        }
        const wait = Math.max(0, (state.retry_at ?? now) - now)
        yield* Effect.logWarning(`${outcome.error.message}; trying again in ${Duration.format(Duration.millis(wait))}`)
        yield* Effect.sleep(Duration.millis(wait))
      }
    })

    yield* Queue.take(wake).pipe(Effect.zipRight(pushNewest), Effect.forever, Effect.forkScoped)

    return {
      offer: (g: { readonly number: number; readonly at: number }) =>
        driver.update((s) => offered(s, g)).pipe(
          Effect.tap((s) => Effect.sync(() => (state = s))),
          Effect.zipRight(Queue.offer(wake, true)),
          Effect.asVoid
        ),
      state: Effect.sync(() => state)
    } as const
  })

/**
 * Pushes to every mirror from now until the scope closes: once at start (a mirror may have missed generations
 * while the service was down, or be new), then after every generation, and when `nudge` is called (files
 * deleted on the primary after their grace period: the next push deletes them on the mirrors too).
 */
export const pushToMirrors = (mirrors: ReadonlyArray<MirrorTarget>, ctx: PushContext, current: { readonly number: number; readonly at: number }) =>
  Effect.gen(function* () {
    const generations = yield* Generations
    const pusher = yield* MirrorPush
    const queue = yield* generations.subscribe
    const queues = yield* Effect.forEach(mirrors, (m) => startMirror(m.name, pusher.driver(m, ctx)))
    yield* Effect.logInfo(`pushing every generation to ${mirrors.length === 1 ? "mirror" : "mirrors"} ${mirrors.map((m) => `${m.name} (${m.user}@${m.host}:${m.rootDir})`).join(", ")}`)
    let newest = current
    const offerAll = (g: { readonly number: number; readonly at: number }) => Effect.forEach(queues, (q) => q.offer(g), { discard: true })
    yield* offerAll(current)
    yield* Queue.take(queue).pipe(
      Effect.tap((g) => Effect.sync(() => (newest = g))),
      Effect.flatMap(offerAll),
      Effect.forever,
      Effect.forkScoped
    )
    return { nudge: Effect.suspend(() => offerAll(newest)) } as const
  })
