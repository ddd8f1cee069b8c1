/**
 * File events under the images folder, from chokidar, as a scoped Stream of paths relative to that folder.
 * Events are hints, not the truth: an `error` from the watcher becomes a `Lost` event, after which the service
 * reconciles the whole tree.
 *
 * chokidar's crawl of a big tree is seconds of work on the thread that runs it, and its hundreds of MiB of state
 * make every full collection of that thread's heap longer. The program started from its launcher therefore runs
 * chokidar on a thread of its own (`watcherThreadFrom`): the launcher again, told by its worker data to watch and
 * post the events. An embedding program, or the sources under test, run it on their own thread.
 */
import { watch } from "chokidar"
import { Data, Effect, Stream } from "effect"
import { relative, sep } from "node:path"
import { parentPort, Worker, workerData } from "node:worker_threads"
import { versionKeyOf } from "../publish/Publisher.js"

export type TreeEvent = Data.TaggedEnum<{
  /** Something changed at this path (relative to the images folder, `/`-separated). */
  Changed: { readonly path: string; readonly kind: string }
  /** The watcher lost events or failed: only a full scan tells the truth now. */
  Lost: { readonly reason: string }
  /** Every folder is watched: a scan from now on misses nothing that an event would not bring. */
  Ready: {}
}>
export const TreeEvent = Data.taggedEnum<TreeEvent>()

/** A new folder above version level is read and watched again this long after chokidar first told of it. */
const lookAgainAfterMs = 1000

/** chokidar over `imagesDir`, telling `send` of each event; returns what stops it. */
const startChokidar = (imagesDir: string, send: (event: TreeEvent) => void) => {
  const watcher = watch(imagesDir, { ignoreInitial: true, atomic: false, ignorePermissionErrors: true, followSymlinks: false })
  // chokidar reads a new folder, then watches it. Under load in CI it was seen to tell of a new product's
  // top folder and of nothing under it, ever after (later uploads there went unseen until the timed
  // reconcile). So each new folder above version level is added again a second later: chokidar reads it
  // again, watches what it missed, and tells of what it had not seen (as changes, not as initial files).
  const again = new Map<string, ReturnType<typeof setTimeout>>()
  watcher.on("all", (kind, path) => {
    const rel = relative(imagesDir, path).split(sep).join("/")
    if (rel === "" || rel.startsWith("..")) return
    send(TreeEvent.Changed({ path: rel, kind }))
    if (kind === "addDir" && versionKeyOf(rel) === undefined && !again.has(path)) {
      again.set(
        path,
        setTimeout(() => {
          again.delete(path)
          if (!watcher.closed) watcher.add(path, undefined, true)
        }, lookAgainAfterMs)
      )
    }
  })
  watcher.on("error", (e) => send(TreeEvent.Lost({ reason: e instanceof Error ? e.message : String(e) })))
  watcher.on("ready", () => send(TreeEvent.Ready()))
  return () => {
    for (const timer of again.values()) clearTimeout(timer)
    return watcher.close()
  }
}

/** chokidar on this thread. */
export const watchTree = (imagesDir: string): Stream.Stream<TreeEvent> =>
  Stream.asyncScoped<TreeEvent>(
    (emit) =>
      Effect.acquireRelease(
        Effect.sync(() => startChokidar(imagesDir, (event) => void emit.single(event))),
        (stop) => Effect.promise(stop)
      ),
    "unbounded"
  )

/** The worker data that makes the launcher, run as a worker thread, watch this folder instead of reading a command line. */
const threadKey = "lxd-image-server/watcher"

/** A plain copy of an event as it crosses between threads (structured clone keeps no prototype). */
type PostedEvent = { readonly _tag: "Changed"; readonly path: string; readonly kind: string } | { readonly _tag: "Lost"; readonly reason: string } | { readonly _tag: "Ready" }

const revive = (e: PostedEvent): TreeEvent =>
  e._tag === "Changed" ? TreeEvent.Changed({ path: e.path, kind: e.kind }) : e._tag === "Lost" ? TreeEvent.Lost({ reason: e.reason }) : TreeEvent.Ready()

/**
 * chokidar on a thread of its own, started from `entry` (the launcher). The stream ends if the thread dies:
 * the service then stops rather than go on deaf.
 */
export const watchTreeOnThread = (entry: string) => (imagesDir: string): Stream.Stream<TreeEvent> =>
  Stream.asyncScoped<TreeEvent>(
    (emit) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const worker = new Worker(entry, { workerData: { [threadKey]: imagesDir }, argv: [], stdout: false, stderr: false })
          worker.on("message", (e: PostedEvent) => void emit.single(revive(e)))
          worker.once("error", () => void emit.end())
          worker.once("exit", () => void emit.end())
          return worker
        }),
        (worker) => Effect.promise(() => worker.terminate())
      ),
    "unbounded"
  )

/**
 * The launcher that started this program, when it can be started again as the watcher's thread: the bundle run
 * by `dist/lxd-image-server.cjs`, whose `require.main` is that launcher. Undefined from the sources.
 */
export const watcherThreadEntry = (): string | undefined => {
  const main = typeof require === "function" ? require.main?.filename : undefined
  return main !== undefined && /\.cjs$/.test(main) ? main : undefined
}

/** chokidar on its own thread when the program runs from its launcher, else on this one. */
export const defaultWatchTree = (): ((imagesDir: string) => Stream.Stream<TreeEvent>) => {
  const entry = watcherThreadEntry()
  return entry === undefined ? watchTree : watchTreeOnThread(entry)
}

/**
 * In a worker thread started by `watchTreeOnThread`: runs chokidar and posts its events to the service, and
 * returns true; anywhere else returns false and does nothing.
 */
export const runAsWatcherThread = (): boolean => {
  const imagesDir = (workerData as Record<string, unknown> | null)?.[threadKey]
  if (parentPort === null || typeof imagesDir !== "string") return false
  const port = parentPort
  startChokidar(imagesDir, (event) => port.postMessage({ ...event }))
  // the thread lives until the service ends it, also once chokidar has nothing left to watch (the images
  // folder removed: the service's next look says so, and why)
  port.on("message", () => undefined)
  return true
}
