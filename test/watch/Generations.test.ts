/**
 * The service's generations, as another service in the same program sees them: it subscribes to the stream,
 * and each committed change of the catalog arrives once, numbered, with what it added and withdrew.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Queue } from "effect"
import { rmSync } from "node:fs"
import { join } from "node:path"
import { WatchLive } from "../../src/Layers.js"
import { Generations } from "../../src/publish/Generations.js"
import { WatchService } from "../../src/watch/WatchService.js"
import { haveTools } from "../support/Tools.js"
import { addContainer, makeWebRoot } from "../support/Tree.js"

const key = "debian/bookworm/amd64/default"

describe.skipIf(!haveTools("tar", "xz", "mksquashfs"))("generations", () => {
  it.scopedLive(
    "a subscriber sees each committed generation once: the first catalog, a new version, a removal",
    () =>
      Effect.gen(function* () {
        const w = makeWebRoot()
        addContainer(w, `${key}/20240101_10:00`, "a")
        const generations = yield* Generations
        const seen = yield* generations.subscribe
        const service = yield* WatchService
        const running = yield* Effect.fork(
          service.run({
            imagesDir: w.images,
            streamsDir: w.streams,
            compat: "both",
            stateDir: join(w.root, "state"),
            settle: Duration.millis(300),
            reconcileEvery: Duration.minutes(10)
          })
        )
        const next = Queue.take(seen).pipe(Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("no generation") }))
        const first = yield* next
        expect(first).toMatchObject({ number: 1, withdrawn: [] })
        expect(first.added.map((a) => a.key)).toEqual([`${key}/20240101_10:00`])

        addContainer(w, `${key}/20240102_10:00`, "b")
        const second = yield* next
        expect(second.number).toBe(2)
        expect(second.added.map((a) => a.key)).toEqual([`${key}/20240102_10:00`])
        expect(second.added[0]!.version.rootfs[0]!.sha256).toMatch(/^[0-9a-f]{64}$/)

        rmSync(w.version(`${key}/20240101_10:00`), { recursive: true })
        const third = yield* next
        expect(third).toMatchObject({ number: 3, added: [], withdrawn: [{ key: `${key}/20240101_10:00` }] })
        expect(third.withdrawn[0]!.at).toBe(third.at)

        // nothing else was committed: each generation came once
        yield* Effect.sleep("1 second")
        expect(yield* Queue.size(seen)).toBe(0)
        yield* Fiber.interrupt(running)
      }).pipe(Effect.provide(WatchLive.pipe(Layer.provideMerge(NodeContext.layer)))),
    60_000
  )
})
