#!/usr/bin/env node
// chokidar alone, as the service calls it: watches a folder with the service's options (src/watch/Watcher.ts)
// and prints one JSON line at `ready`: ms since this process started, VmRSS and VmHWM (MiB), how many paths
// it watches and the errors it reported. Then exits. Usage: node chokidar-alone.mjs <folder>
import { watch } from "chokidar" // the project's own, from its node_modules
import { readFileSync } from "node:fs"

const folder = process.argv[2]
if (!folder) throw new Error("usage: chokidar-alone.mjs <folder>")
let errors = 0
let firstError
const watcher = watch(folder, { ignoreInitial: true, atomic: false, ignorePermissionErrors: true, followSymlinks: false })
watcher.on("error", (e) => {
  errors++
  firstError ??= e?.code ?? String(e?.message ?? e)
})
watcher.on("ready", () => {
  const readyMs = performance.now()
  const status = readFileSync("/proc/self/status", "utf8")
  const kb = (key) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN)
  const watched = Object.values(watcher.getWatched()).reduce((n, names) => n + names.length, 0)
  process.stdout.write(`${JSON.stringify({ readyMs, rssMiB: kb("VmRSS") / 1024, hwmMiB: kb("VmHWM") / 1024, watched, errors, firstError })}\n`)
  process.exit(0)
})
