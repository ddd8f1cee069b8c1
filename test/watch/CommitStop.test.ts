/**
 * A stop that lands while a generation is committed: images.json is written, then the generation goes into the
 * journal. The two are one step that a stop waits for; before, a stop between them left a catalog on disk whose
 * generation the journal did not hold, and the next start published it again under the same number.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Layer } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { CatalogStore } from "../../src/indexer/CatalogStore.js"
import { Hasher } from "../../src/indexer/Hasher.js"
import { Indexer } from "../../src/indexer/Indexer.js"
import { VersionHasher } from "../../src/indexer/VersionHasher.js"
import { WriterLock } from "../../src/indexer/WriterLock.js"
import { MirrorLive, SyncLive } from "../../src/Layers.js"
import { Generations } from "../../src/publish/Generations.js"
import { Deleter } from "../../src/retention/Deleter.js"
import { Metadata } from "../../src/tree/Metadata.js"
import { Scanner } from "../../src/tree/Scanner.js"
import { WatchService } from "../../src/watch/WatchService.js"
import { haveTools } from "../support/Tools.js"
import { addContainer, makeWebRoot } from "../support/Tree.js"

describe.skipIf(!haveTools("tar", "xz", "mksquashfs"))("a stop during a commit", () => {
  it.scopedLive("waits for the generation to be in the journal once images.json is written", () =>
    Effect.gen(function* () {
      const w = makeWebRoot()
      addContainer(w, "debian/bookworm/amd64/default/20240101_10:00", "a")
      const wrote = yield* Deferred.make<void>()
      // the store as it is, but it tells when it wrote the version's generation and then takes a moment before it
      // returns (the first reconcile may write the empty catalog first, while the version settles)
      const withVersion = () => readFileSync(join(w.streams, "images.json"), "utf8").includes("20240101_10:00")
      const slowStore = Layer.effect(
        CatalogStore,
        Effect.map(CatalogStore, (store) => ({
          ...store,
          write: (...args: Parameters<typeof store.write>) =>
            store.write(...args).pipe(
              Effect.tap((changed) => (changed && withVersion() ? Effect.zipRight(Deferred.succeed(wrote, undefined), Effect.sleep("300 millis")) : Effect.void))
            )
        }) as CatalogStore)
      ).pipe(Layer.provide(CatalogStore.Default))
      const indexer = Indexer.Default.pipe(
        Layer.provideMerge(Layer.mergeAll(Scanner.Default, slowStore, WriterLock.Default, Generations.Default, VersionHasher.Default, Deleter.Default)),
        Layer.provideMerge(Layer.mergeAll(Metadata.Default, Hasher.Default))
      )
      const layer = WatchService.Default.pipe(Layer.provideMerge(Layer.mergeAll(MirrorLive, SyncLive, indexer)), Layer.provideMerge(NodeContext.layer))
      const stateDir = join(w.root, "state")
      yield* Effect.gen(function* () {
        const service = yield* WatchService
        const running = yield* Effect.fork(
          service.run({ imagesDir: w.images, streamsDir: w.streams, compat: "both", stateDir, settle: Duration.millis(100), reconcileEvery: Duration.minutes(10) })
        )
        yield* Deferred.await(wrote).pipe(Effect.timeout("20 seconds"))
        // the stop, while the commit is between its write and its journal line
        yield* Fiber.interrupt(running)
      }).pipe(Effect.provide(layer))
      expect(readFileSync(join(w.streams, "images.json"), "utf8")).toContain("20240101_10:00")
      const journal = readFileSync(join(stateDir, "publisher.jsonl"), "utf8")
      expect(journal).toMatch(/"generation":1,/)
    }), 60_000)
})
