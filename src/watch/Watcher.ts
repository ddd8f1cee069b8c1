/**
 * File events under the images folder, from chokidar, as a scoped Stream of paths relative to that folder.
 * Events are hints, not the truth: an `error` from the watcher becomes a `Lost` event, after which the service
 * reconciles the whole tree.
 *
 * chokidar's crawl of a big tree is seconds of work on the thread that runs it, and its hundreds of MiB of state
 * lengthen every full collection of that thread's heap. The program run from its launcher therefore runs chokidar
 * on a thread of its own, from the small bundle beside the launcher (`WatcherThread.ts`). An embedding program,
 * or the sources under test, run it on their own thread.
 */
import { Data, Effect, Stream } from "effect"
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { Worker } from "node:worker_threads"
import { earlyWatcher, takeEarlyThread } from "../process/EarlyThreads.js"
import { type PlainTreeEvent, startTreeWatch } from "./TreeWatch.js"

export type TreeEvent = Data.TaggedEnum<{
  /** Something changed at this path (relative to the images folder, `/`-separated). */
  Changed: { readonly path: string; readonly kind: string }
  /** The watcher lost events or failed: only a full scan tells the truth now. */
  Lost: { readonly reason: string }
  /** Every folder is watched: a scan from now on misses nothing that an event would not bring. */
  Ready: {}
}>
export const TreeEvent = Data.taggedEnum<TreeEvent>()

const treeEvent = (e: PlainTreeEvent): TreeEvent =>
  e._tag === "Changed" ? TreeEvent.Changed({ path: e.path, kind: e.kind }) : e._tag === "Lost" ? TreeEvent.Lost({ reason: e.reason }) : TreeEvent.Ready()

/** chokidar on this thread. */
export const watchTree = (imagesDir: string): Stream.Stream<TreeEvent> =>
  Stream.asyncScoped<TreeEvent>(
    (emit) =>
      Effect.acquireRelease(
        Effect.sync(() => startTreeWatch(imagesDir, (event) => void emit.single(treeEvent(event)))),
        (stop) => Effect.promise(stop)
      ),
    "unbounded"
  )

/**
 * chokidar on a thread of its own, started from `entry` (the watcher's bundle), or the one the launcher started
 * from it before the program loaded (EarlyThreads), told the folder now. The stream ends if the thread dies: the
 * service then stops rather than go on deaf.
 */
export const watchTreeOnThread = (entry: string) => (imagesDir: string): Stream.Stream<TreeEvent> =>
  Stream.asyncScoped<TreeEvent>(
    (emit) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const early = takeEarlyThread(earlyWatcher.key)
          const worker = early ?? new Worker(entry, { ...earlyWatcher.options, workerData: { imagesDir } })
          if (worker === early) {
            worker.ref()
            worker.postMessage({ imagesDir })
          }
          worker.on("message", (e: PlainTreeEvent) => void emit.single(treeEvent(e)))
          // what killed it is said (as events lost, in the log) before the stream ends
          worker.once("error", (e) => {
            void emit.single(TreeEvent.Lost({ reason: `its thread failed: ${e instanceof Error ? e.message : String(e)}` }))
            void emit.end()
          })
          worker.once("exit", () => void emit.end())
          return worker
        }),
        (worker) => Effect.promise(() => worker.terminate())
      ),
    "unbounded"
  )

/** The watcher's bundle, as the build writes it beside the launcher. */
export const watcherThreadFile = earlyWatcher.file

/**
 * The watcher's bundle beside the launcher that started this program (`require.main`: the bundle is run by
 * it), when there is one; undefined from the sources, or for a program that embeds the layers.
 */
export const watcherThreadEntry = (): string | undefined => {
  const main = typeof require === "function" ? require.main?.filename : undefined
  const entry = main === undefined ? undefined : join(dirname(main), watcherThreadFile)
  return entry !== undefined && existsSync(entry) ? entry : undefined
}

/** chokidar on its own thread when the program runs from its launcher, else on this one. */
export const defaultWatchTree = (): ((imagesDir: string) => Stream.Stream<TreeEvent>) => {
  const entry = watcherThreadEntry()
  return entry === undefined ? watchTree : watchTreeOnThread(entry)
}
