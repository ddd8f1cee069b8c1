// Preloaded with `node --require` by the bench: prints the process's peak RSS (worker threads included) at exit.
// CommonJS, and a no-op in worker threads (which preload it too): `--import` would start the ES module loader
// in the process and again in every hash worker, and time that `update` itself does not spend.
"use strict"
const { isMainThread } = require("node:worker_threads")
const { writeSync } = require("node:fs")
if (isMainThread) {
  process.on("exit", () => {
    writeSync(2, `\nBENCH_MAX_RSS_KB=${process.resourceUsage().maxRSS}\n`)
  })
}
