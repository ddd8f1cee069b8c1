/**
 * Every committed change of the catalog, as a stream other services subscribe to (logging now; mirror push,
 * metrics and retention later). Each subscriber has its own unbounded queue, so a slow one never blocks
 * publishing, and each sees every generation committed after it subscribed, once.
 */
import { Effect, PubSub, Queue, type Scope, Stream } from "effect"
import type { Generation } from "./Publisher.js"

export type { Generation } from "./Publisher.js"

export class Generations extends Effect.Service<Generations>()("lxd-image-server/Generations", {
  effect: Effect.gen(function* () {
    const hub = yield* PubSub.unbounded<Generation>()
    return {
      publish: (g: Generation) => PubSub.publish(hub, g).pipe(Effect.asVoid),
      /** A queue of the generations committed from now on, for the scope's life. */
      subscribe: PubSub.subscribe(hub) as Effect.Effect<Queue.Dequeue<Generation>, never, Scope.Scope>,
      /** The same as a stream. */
      stream: Stream.fromPubSub(hub)
    } as const
  })
}) {}

const images = (n: number) => `${n} image${n === 1 ? "" : "s"}`

/** The log lines of a generation: one per version published or withdrawn. */
export const generationLines = (g: Generation): ReadonlyArray<string> => [
  ...g.added.map(
    ({ key, version, since }) =>
      `published ${key} (${images(version.rootfs.length + (version.unified ? 1 : 0))})${since === undefined ? "" : ` in ${((g.at - since) / 1000).toFixed(2)} s`} [generation ${g.number}]`
  ),
  ...g.withdrawn.map(({ key, reason }) => `removed ${key} from the catalog: ${reason} [generation ${g.number}]`)
]

/** Logs each generation, as it is committed, until the scope closes. */
export const logGenerations = Effect.gen(function* () {
  const generations = yield* Generations
  const queue = yield* generations.subscribe
  yield* Queue.take(queue).pipe(
    Effect.flatMap((g) => Effect.forEach(generationLines(g), (line) => Effect.logInfo(line), { discard: true })),
    Effect.forever,
    Effect.forkScoped
  )
})

