/**
 * File events are hints: what the watcher misses, the service still finds. chokidar reads a new folder, then
 * watches it, so a staging folder renamed into place in between sends no event (seen in CI: a version made
 * under a new product folder was not published until the 10-minute reconcile). Here the watcher is one the
 * test drives, which tells of the new product folder and never of the rename.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Queue, Stream } from "effect"
import { renameSync } from "node:fs"
import { join } from "node:path"
import { WatchLive } from "../../src/Layers.js"
import { Generations } from "../../src/publish/Generations.js"
import { WatchService } from "../../src/watch/WatchService.js"
import { TreeEvent } from "../../src/watch/Watcher.js"
import type { ServiceReport } from "../../src/health/Readiness.js"
import { haveTools } from "../support/Tools.js"
import { addContainer, makeWebRoot } from "../support/Tree.js"

describe.skipIf(!haveTools("tar", "xz", "mksquashfs"))("events the watcher misses", () => {
  it.scopedLive(
    "a staging folder renamed into a new product folder before its watch was set is published within seconds",
    () =>
      Effect.gen(function* () {
        const w = makeWebRoot()
        addContainer(w, "debian/bookworm/amd64/default/20240101_10:00", "a")
        const generations = yield* Generations
        const seen = yield* generations.subscribe
        const events = yield* Queue.unbounded<TreeEvent>()
        const reports = yield* Queue.unbounded<ServiceReport>()
        const service = yield* WatchService
        const running = yield* Effect.fork(
          service.run({
            imagesDir: w.images,
            streamsDir: w.streams,
            compat: "both",
            stateDir: join(w.root, "state"),
            settle: Duration.millis(300),
            reconcileEvery: Duration.minutes(10),
            events: () => Stream.fromQueue(events),
            report: (r) => Queue.offer(reports, r)
          })
        )
        const next = Queue.take(seen).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("no generation within 10 s") }))
        yield* Queue.offer(events, TreeEvent.Ready())
        expect((yield* next).number).toBe(1)

        // an upload makes the product's folders and a hidden staging folder in one go: the watcher tells of the
        // product folder, and the service reconciles the tree once it is quiet
        const staging = addContainer(w, "fedora/40/amd64/cloud/.20240104_10:00", "f")
        const told = Date.now()
        yield* Queue.offer(events, TreeEvent.Changed({ path: "fedora", kind: "addDir" }))
        // the first turn with work after the settle window is that reconcile
        yield* Queue.take(reports).pipe(
          Effect.repeat({ until: (r) => r.at >= told + 300 }),
          Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("no reconcile after the event") })
        )
        // then the staging folder is renamed into place, and no event comes of it
        renameSync(staging, w.version("fedora/40/amd64/cloud/20240104_10:00"))
        const second = yield* next
        expect(second.added.map((a) => a.key)).toEqual(["fedora/40/amd64/cloud/20240104_10:00"])
        yield* Fiber.interrupt(running)
      }).pipe(Effect.provide(WatchLive.pipe(Layer.provideMerge(NodeContext.layer)))),
    60_000
  )
})
