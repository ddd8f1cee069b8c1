#!/usr/bin/env node
// npm run bench: the speed and memory goals of lxd-image-server, measured on this machine in one run.
//  A. `update` of 20 versions x 100 MiB random squashfs against the machine's sha256 limit (openssl speed on
//     every core, every rootfs byte hashed twice), and update's peak RSS on one 1 GiB image.
//  B. at each scale of BENCH_SCALES, a tree of N tiny versions: update; chokidar alone (its ready time and
//     RSS); watch's cold start, warm restart and one-version publishes (latency, and CPU: the service's
//     utime + stime from the first write until 2.5 s after images.json lists the version); watch's memory;
//     `add` of one image into the tree. chokidar needs about 3 inotify watches per version: the bench raises
//     fs.inotify.max_user_watches when it may (as root), else it skips the steps that watch at that scale and
//     says so.
// Figures are medians, with min–median–max, over several runs where a run is cheap. Every wait has a timeout.
// Options (env):
//   BENCH_DIR (default $TMPDIR/lis-bench): where the trees are made once and kept
//   BENCH_BIN (default this checkout's dist/lxd-image-server.cjs): the build measured
//   BENCH_PARTS (A,B)  BENCH_SCALES (1000,10000,100000; the whole run takes about 20 minutes on 2 cores, of
//      which 100,000 versions about 12: BENCH_SCALES=1000,10000 for a quicker one)
//   BENCH_STEPS (update,add,chokidar,cold,warm,publish): the steps of B to run; a warm restart or a publish without
//      "cold" still starts cold once, unmeasured, for the state it needs; the warm and memory goals need "chokidar"
//   A: BENCH_VERSIONS (20), BENCH_MIB (100), BENCH_BIG_MIB (1024), BENCH_UPDATE_RUNS (5)
//   B: BENCH_META (copy | link: each version's metadata a copy of one file, or a hard link to it),
//      BENCH_PUBLISH (write | rename: a new version written in place, rootfs then metadata, or a hidden folder
//      renamed into place), BENCH_PUBLISHES (5, at most 10), BENCH_SETTLE (2)
import { existsSync, mkdirSync } from "node:fs"
import { availableParallelism, totalmem } from "node:os"
import { partA } from "./bench/part-a.mjs"
import { checkMetadataModes, partB } from "./bench/part-b.mjs"
import { benchDir, bin } from "./bench/paths.mjs"
import { BenchError, loadAverage, verdict } from "./bench/util.mjs"

process.on("uncaughtException", (e) => {
  console.error(`\nbench failed: ${e instanceof BenchError ? e.message : e?.stack ?? e}`)
  process.exit(1)
})
const started = performance.now()
const parts = (process.env.BENCH_PARTS ?? "A,B").toUpperCase().split(",").map((s) => s.trim())
const scales = (process.env.BENCH_SCALES ?? "1000,10000,100000").split(",").map((s) => Number(s.trim().replaceAll("_", "")))
if (scales.some((n) => !Number.isInteger(n) || n < 10)) throw new BenchError(`BENCH_SCALES: whole numbers >= 10, comma-separated; got ${process.env.BENCH_SCALES}`)
if (!existsSync(bin)) throw new BenchError("build first: npm run build")
mkdirSync(benchDir, { recursive: true })
console.log(`lxd-image-server bench: ${availableParallelism()} cores, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, node ${process.version}, trees in ${benchDir}`)
const load = loadAverage()
if (load > availableParallelism() / 2) console.log(`WARNING: load average ${load.toFixed(2)}: other work on this machine skews every figure`)

let a
if (parts.includes("A")) a = partA(benchDir)
const results = []
if (parts.includes("B")) {
  console.log("\nB. many tiny versions")
  checkMetadataModes(benchDir)
  for (const n of scales) results.push(await partB(benchDir, n))
}

// the summary: one compact table per scale
const s = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "n/a")
const range = (st, d = 2) => (st.n > 1 ? `${s(st.min, d)}–${s(st.med, d)}–${s(st.max, d)}` : s(st.med, d))
const row = (label, value, goal, ok) => console.log(`  ${label.padEnd(30)} ${value.padEnd(24)} ${goal.padEnd(26)} ${ok}`)
console.log(`\nSummary (min–median–max; verdicts on the median)`)
if (a) {
  console.log(`\nA. big images`)
  row("figure", "value", "goal", "")
  row("update, 20 x 100 MiB (s)", range(a.wall), `limit ${s(a.limit)} s`, "")
  row("update / limit", `${s(a.ratio)}x`, "<= 1.35x", verdict(a.ratio, 1.35))
  row("update 1 GiB: peak RSS (MB)", range(a.rss, 0), "< 200 MB", a.rss.med < 200 ? "met" : "NOT met")
}
const settle = Number(process.env.BENCH_SETTLE ?? 2)
for (const r of results) {
  console.log(`\nB. ${r.n.toLocaleString("en")} versions (steps: ${Object.entries(r.steps).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(", ")})`)
  row("figure", "value", "goal", "")
  const at10k = r.n === 10000
  if (r.update) {
    row("1. update (s)", range(r.update), at10k ? "<= 8 s" : "(goal at 10,000)", at10k ? verdict(r.update.med, 8) : "")
    row("   update peak RSS (MiB)", range(r.updateRss, 0), "", "")
  }
  if (r.chokidar) {
    row("2. chokidar alone: ready (s)", range(r.chokidar), "", r.chokidarErrors ? `${r.chokidarErrors} watch errors` : "")
    row("   chokidar alone: RSS (MiB)", range(r.chokidarRss, 0), "", "")
  }
  if (r.cold) row("3. watch cold start (s)", range(r.cold), "", "")
  if (r.warm) {
    row("4. watch warm restart (s)", range(r.warm), "", "")
    row("   minus chokidar, paired (s)", range(r.warmOver), "<= 1 s, 0 hashed", `${r.warmOk} (${r.warmHashed} hashed)`)
  }
  if (r.latency) {
    row("5. publish latency (s)", range(r.latency), `<= ${s(settle + 0.5, 1)} s`, verdict(r.latency.med, settle + 0.5))
    row("   publish CPU, +2.5 s (s)", range(r.cpu), at10k ? "<= 0.15 s" : "(goal at 10,000)", at10k ? verdict(r.cpu.med, 0.15) : "")
  }
  if (r.mem) row("6. watch RSS / peak (MiB)", `${s(r.mem.rss, 0)} / ${s(r.mem.hwm, 0)}`, `<= ${s(r.memGoal, 0)} MiB`, `${verdict(r.mem.rss, r.memGoal)} / ${verdict(r.mem.hwm, r.memGoal)}`)
  if (r.add) row("7. add of one image (s)", range(r.add), "", "")
  for (const [name, why] of Object.entries(r.failed)) console.log(`  ${name} FAILED: ${why.slice(0, 200)}`)
}
console.log(`\nbench took ${((performance.now() - started) / 1000).toFixed(0)} s`)
