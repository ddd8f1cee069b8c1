/**
 * Threads the launcher starts before it loads the program. A thread takes about 50 ms to start on an idle
 * core, and 130 ms while the program loads beside it; so the launcher (dist/lxd-image-server.cjs, written by
 * scripts/bundle.mjs from this module) starts those a command needs at once: the hash workers of `update`,
 * `add` and `verify`, the file watcher of `watch` and `serve`. Each waits for its work in its first message;
 * the program takes it from where the launcher leaves it (`takeEarlyThread`), or starts its own the same way.
 * The launcher looks for the command among its arguments as a plain word: a word given as an option's value
 * starts the threads too, unused; they do not hold the process open.
 * It imports node's modules only: the build reads it as it is.
 */
import { Worker } from "node:worker_threads"

/** A hash worker's whole start-up source: it runs its first message's `source`, with its `data` as workerData. */
export const hashWorkerBoot = `const { parentPort } = require("node:worker_threads")
parentPort.once("message", ({ source, data }) => new Function("require", "parentPort", "workerData", source)(require, parentPort, data))`

/** One hash worker per core, started from `hashWorkerBoot`. */
export const earlyHashWorkers = { key: "lxd-image-server/early-hash-workers", commands: ["update", "add", "verify"] } as const

/**
 * The file watcher's thread (WatcherThread.ts, bundled as `file` beside the launcher), waiting for the folder to
 * watch, started with `options` however it starts. Its young generation is held to 24 MB (V8's default for a
 * worker is 48): chokidar's crawl makes garbage fast, and the larger young space was RSS the service held at its
 * peak, in some starts 80 MiB more than in others. 10,000 versions, 5 alternated warm restarts: VmHWM 452–530 MB
 * (median 464) by default, 438–457 MB (median 445) with 24; the restart's time within the noise. At 100,000
 * versions it costs 50–115 MB at the peak (2 alternated runs: 2,991–2,999 MB by default, 3,047–3,106 MB), the
 * crawl's time within the noise. Not less than 24: with 8 MB, more of the crawl's state outlived its young space,
 * and 100,000 versions took 4 s longer to crawl, with 340 MB more at the peak.
 */
export const earlyWatcher: {
  readonly key: string
  readonly commands: ReadonlyArray<string>
  readonly file: string
  readonly options: { readonly argv: Array<string>; readonly resourceLimits: { readonly maxYoungGenerationSizeMb: number } }
} = {
  key: "lxd-image-server/early-watcher",
  commands: ["watch", "serve"],
  file: "lxd-image-server.watcher.cjs",
  options: { argv: [], resourceLimits: { maxYoungGenerationSizeMb: 24 } }
}

/** One of the threads the launcher left under `key` (an array), if any is left: each is taken once. */
export const takeEarlyThread = (key: string): Worker | undefined => {
  const early: unknown = Reflect.get(globalThis, Symbol.for(key))
  const thread: unknown = Array.isArray(early) ? early.shift() : undefined
  return thread instanceof Worker ? thread : undefined
}
