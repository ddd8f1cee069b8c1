/**
 * Each mirror's own queue, for `watch`: a generation committed wakes the mirror's pusher, which sends the newest
 * catalog (generations committed during a push are coalesced into the next one); a failed push is tried again
 * after a capped exponential backoff. Publishing never waits for a mirror, and one mirror never waits for another.
 */
import { Clock, Duration, Effect, Queue } from "effect"
import { Generations } from "../publish/Generations.js"
import type { MirrorTarget } from "./MirrorConfig.js"
import { MirrorPush, type MirrorPushError, type PushContext } from "./MirrorPush.js"
import { type Backoff, defaultBackoff, failed, type MirrorState, offered, started, stopped, succeeded } from "./MirrorState.js"

/** What a mirror's pusher needs from the world: replaced in tests. */
export interface MirrorDriver {
  readonly load: Effect.Effect<MirrorState>
  readonly save: (s: MirrorState) => Effect.Effect<void>
  /** Pushes the newest catalog; answers the products of the index pushed. */
  readonly push: (indexBefore: ReadonlyArray<string> | null) => Effect.Effect<ReadonlyArray<string>, MirrorPushError>
}

/**
 * Starts a mirror's pusher in the current scope; returns how to offer it a generation. Offering never waits:
 * the wake-up queue holds one signal at most.
 */
export const startMirror = (name: string, driver: MirrorDriver, backoff: Backoff = defaultBackoff) =>
  Effect.gen(function* () {
    let state = stopped(yield* driver.load)
    const set = (next: MirrorState) => Effect.suspend(() => {
      state = next
      return driver.save(next)
    })
    const wake = yield* Queue.sliding<true>(1)

    const pushNewest = Effect.gen(function* () {
      for (;;) {
        yield* Queue.takeAll(wake)
        const generation = state.wanted ?? 0
        const startedAt = yield* Clock.currentTimeMillis
        yield* set(started(state, process.pid))
        const result = yield* Effect.either(driver.push(state.index_products)).pipe(Effect.onInterrupt(() => set(stopped(state))))
        const now = yield* Clock.currentTimeMillis
        if (result._tag === "Right") {
          if (state.failures > 0) yield* Effect.logInfo(`mirror ${name}: pushing works again after ${state.failures} failed attempts`)
          yield* set(succeeded(state, generation, now, result.right))
          yield* Effect.logInfo(`mirror ${name}: generation ${generation} pushed in ${((now - startedAt) / 1000).toFixed(2)} s`)
          return
        }
        yield* set(failed(state, result.left.message, now, backoff))
        const wait = Math.max(0, (state.retry_at ?? now) - now)
        yield* Effect.logWarning(`${result.left.message}; trying again in ${Duration.format(Duration.millis(wait))}`)
        yield* Effect.sleep(Duration.millis(wait))
      }
    })

    yield* Queue.take(wake).pipe(Effect.zipRight(pushNewest), Effect.forever, Effect.forkScoped)

    return {
      offer: (g: { readonly number: number; readonly at: number }) =>
        Effect.suspend(() => set(offered(state, g))).pipe(Effect.zipRight(Queue.offer(wake, true)), Effect.asVoid),
      state: Effect.sync(() => state)
    } as const
  })

/**
 * Pushes to every mirror from now until the scope closes: once at start (a mirror may have missed generations
 * while the service was down, or be new), then after every generation.
 */
export const pushToMirrors = (mirrors: ReadonlyArray<MirrorTarget>, ctx: PushContext, current: { readonly number: number; readonly at: number }) =>
  Effect.gen(function* () {
    const generations = yield* Generations
    const pusher = yield* MirrorPush
    const queue = yield* generations.subscribe
    const queues = yield* Effect.forEach(mirrors, (m) =>
      startMirror(m.name, {
        load: pusher.readState(ctx.stateDir, m.name),
        save: (s) => pusher.writeState(ctx.stateDir, m.name, s),
        push: (indexBefore) => pusher.push(m, ctx, indexBefore)
      })
    )
    yield* Effect.logInfo(`pushing every generation to ${mirrors.length === 1 ? "mirror" : "mirrors"} ${mirrors.map((m) => `${m.name} (${m.user}@${m.host}:${m.rootDir})`).join(", ")}`)
    yield* Effect.forEach(queues, (q) => q.offer(current), { discard: true })
    yield* Queue.take(queue).pipe(
      Effect.flatMap((g) => Effect.forEach(queues, (q) => q.offer(g), { discard: true })),
      Effect.forever,
      Effect.forkScoped
    )
  })
