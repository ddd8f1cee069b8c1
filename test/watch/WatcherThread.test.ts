/**
 * chokidar on a thread of its own: the program run from its launcher starts the watcher's bundle beside it as a
 * worker thread, which watches the images folder and posts the events; the service's stream ends if that thread
 * dies.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Option, Stream } from "effect"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { Worker } from "node:worker_threads"
import { earlyWatcher } from "../../src/process/EarlyThreads.js"
import { type TreeEvent, watcherThreadFile, watchTreeOnThread } from "../../src/watch/Watcher.js"
import { binPath } from "../support/Bin.js"

const entry = join(dirname(binPath), watcherThreadFile)

describe("the watcher thread", () => {
  it.scopedLive("is the bundle the build writes beside the launcher: it tells when it is ready, then of what changes", () =>
    Effect.gen(function* () {
      const images = mkdtempSync(join(tmpdir(), "lis-thread-"))
      mkdirSync(join(images, "debian"))
      const seen: Array<TreeEvent> = []
      const found = yield* watchTreeOnThread(entry)(images).pipe(
        Stream.tap((e) =>
          Effect.sync(() => {
            seen.push(e)
            if (e._tag === "Ready") mkdirSync(join(images, "debian", "bookworm"))
          })
        ),
        Stream.filter((e) => e._tag === "Changed" && e.path === "debian/bookworm"),
        Stream.runHead,
        Effect.timeout("20 seconds")
      )
      expect(Option.getOrUndefined(found)).toMatchObject({ _tag: "Changed", path: "debian/bookworm", kind: "addDir" })
      // the folder there at the start is not told of: only the readiness came before the change
      expect(seen.map((e) => e._tag)).toEqual(["Ready", "Changed"])
    })
  )

  it.scopedLive("is taken from the launcher, which started it before the program loaded, and told the folder then", () =>
    Effect.gen(function* () {
      const images = mkdtempSync(join(tmpdir(), "lis-thread-"))
      mkdirSync(join(images, "debian"))
      // as the launcher leaves it: started with no folder, waiting for the service's first message
      const early = new Worker(entry, { argv: [] })
      early.unref()
      const left = [early]
      const key = Symbol.for(earlyWatcher.key)
      Reflect.set(globalThis, key, left)
      yield* Effect.addFinalizer(() => Effect.sync(() => Reflect.deleteProperty(globalThis, key)))
      // an unknown message does not start it: only the folder does
      early.postMessage("hello")
      const found = yield* watchTreeOnThread(entry)(images).pipe(
        Stream.tap((e) => Effect.sync(() => e._tag === "Ready" && mkdirSync(join(images, "debian", "bookworm")))),
        Stream.filter((e) => e._tag === "Changed" && e.path === "debian/bookworm"),
        Stream.runHead,
        Effect.timeout("20 seconds")
      )
      expect(Option.getOrUndefined(found)).toMatchObject({ _tag: "Changed", path: "debian/bookworm", kind: "addDir" })
      expect(left).toEqual([])
    })
  )

  it.scopedLive("ends its stream when the thread dies, so that the service does not go on deaf", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "lis-thread-"))
      const dying = join(dir, "dying.cjs")
      writeFileSync(dying, "process.exit(3)\n")
      const events = yield* watchTreeOnThread(dying)(dir).pipe(Stream.runCollect, Effect.timeout("20 seconds"))
      expect(Chunk.toReadonlyArray(events)).toEqual([])
      // a thread that throws: what killed it comes first, as events lost
      const failing = join(dir, "failing.cjs")
      writeFileSync(failing, 'throw new Error("no watches left")\n')
      const told = yield* watchTreeOnThread(failing)(dir).pipe(Stream.runCollect, Effect.timeout("20 seconds"))
      expect(Chunk.toReadonlyArray(told)).toEqual([expect.objectContaining({ _tag: "Lost", reason: "its thread failed: no watches left" })])
    })
  )
})
