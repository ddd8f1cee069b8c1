/**
 * Two processes pushing to one mirror (`watch` and `mirror push`), with the real state file and the real locks
 * of the state folder; only rsync is replaced. Each push must start from what the push before it left on the
 * mirror, and the state file must end saying what the mirror holds, whoever recorded last.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Deferred, Effect, Fiber, Layer } from "effect"
import { MirrorLive } from "../../src/Layers.js"
import type { MirrorTarget } from "../../src/mirror/MirrorConfig.js"
import { MirrorPush } from "../../src/mirror/MirrorPush.js"
import { type MirrorDriver, pushOnce } from "../../src/mirror/MirrorQueue.js"
import { initialState, type MirrorState, offered, parseState, stateText, succeeded, stopped } from "../../src/mirror/MirrorState.js"
import { tempDir } from "../support/Images.js"

const target: MirrorTarget = { name: "eu1", host: "127.0.0.1", user: "lxdadm", port: 22, keyPath: undefined, rootDir: "/srv", knownHosts: "/dev/null", acceptNewHostKey: false }

describe("merging a mirror's state", () => {
  it("a push recorded after a newer one never takes the generation back, and clears only its own mark", () => {
    const newer = succeeded({ ...initialState, pushing: 222, wanted: 6 }, 6, 1_000, ["a", "b"], 111)
    expect(newer).toMatchObject({ generation: 6, pushing: 222 })
    const later = succeeded(newer, 5, 2_000, ["a", "b", "c"], 222)
    expect(later).toMatchObject({ generation: 6, wanted: 6, pushing: null, behind_since: null, index_products: ["a", "b", "c"] })
    expect(stopped({ ...initialState, pushing: 222 }, 111).pushing).toBe(222)
  })
})

describe("two pushers, one mirror", () => {
  it.live("the second push waits for the first, starts from the index it left, and the file ends true", () =>
    Effect.gen(function* () {
      const pusher = yield* MirrorPush
      const stateDir = tempDir("lis-mirror-state-")
      mkdirSync(join(stateDir, "mirrors"))
      const stateFile = join(stateDir, "mirrors", "eu1.json")
      writeFileSync(stateFile, stateText({ ...initialState, generation: 4, wanted: 4, pushed_at: 0, index_products: ["a"] }))
      const real = pusher.driver(target, { streamsDir: "/nonexistent/streams/v1", imagesPath: "images", stateDir })
      const seen: Record<string, ReadonlyArray<string> | null> = {}
      const inside = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      // `watch`: offered generation 5, pushes it, and is slow about it
      const watch: MirrorDriver = {
        ...real,
        push: (before) =>
          Effect.gen(function* () {
            seen["watch"] = before
            yield* Deferred.succeed(inside, undefined)
            yield* Deferred.await(release)
            return ["a", "b"]
          })
      }
      // `mirror push`, started while the watch pushes: the primary's status file still said generation 4
      const cli: MirrorDriver = { ...real, push: (before) => Effect.sync(() => ((seen["cli"] = before), ["a", "b", "c"])) }

      yield* real.update((s) => offered(s, { number: 5, at: 5_000 }))
      const first = yield* Effect.fork(pushOnce(watch))
      yield* Deferred.await(inside)
      const second = yield* Effect.fork(pushOnce(cli, { floor: 4 }))
      // it waits for the mirror while the first push holds it
      yield* Effect.sleep("1 second")
      expect(seen["cli"]).toBeUndefined()
      yield* Deferred.succeed(release, undefined)
      const [w, c] = [yield* Fiber.join(first), yield* Fiber.join(second)]
      expect(w.error).toBeUndefined()
      expect(c.error).toBeUndefined()
      expect(seen).toEqual({ watch: ["a"], cli: ["a", "b"] })
      const recorded: MirrorState = parseState(readFileSync(stateFile, "utf8"))
      expect(recorded).toMatchObject({ generation: 5, wanted: 5, pushing: null, failures: 0, behind_since: null, index_products: ["a", "b", "c"] })
    }).pipe(Effect.scoped, Effect.provide(MirrorLive.pipe(Layer.provideMerge(NodeContext.layer))))
  , 60_000)
})
