/**
 * How a hash worker starts, apart from what it runs: a thread that waits for its first message, the code of
 * the job (Hasher's worker source) and its data, and runs it. A thread takes about 50 ms to start on an idle
 * core, and 130 ms while the program loads beside it; so the launcher (dist/lxd-image-server.cjs, written by
 * scripts/bundle.mjs from this module) starts the workers of the commands that hash big files before it loads
 * the program, and the Hasher takes them when it needs workers, or starts its own the same way.
 * No imports: the build reads this module as it is.
 */

/** A worker's whole start-up source: it runs the first message's `source`, with its `data` as workerData. */
export const workerBoot = `const { parentPort } = require("node:worker_threads")
parentPort.once("message", ({ source, data }) => new Function("require", "parentPort", "workerData", source)(require, parentPort, data))`

/** Where the launcher leaves the workers it started, as an array, for the Hasher to take. */
export const earlyWorkersKey = "lxd-image-server/early-hash-workers"

/**
 * The commands that hash big files as soon as they start: the launcher starts workers when one of these
 * words is among the arguments (a word given as an option's value starts them too, unused; they do not hold
 * the process open).
 */
export const earlyWorkerCommands: ReadonlyArray<string> = ["update", "add", "verify"]
