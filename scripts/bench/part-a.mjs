// Part A: `update` over big images, against the machine's sha256 limit; peak RSS on a 1 GiB image.
import { execFileSync } from "node:child_process"
import { closeSync, openSync, readSync, statSync } from "node:fs"
import { availableParallelism } from "node:os"
import { makeBigTree } from "./trees.mjs"
import { runUpdate } from "./update.mjs"
import { BenchError, fmt, line, MiB, stats, verdict } from "./util.mjs"

const env = (name, fallback) => Number(process.env[name] ?? fallback)

/** Reads files through, so that the page cache holds them (update is measured with a warm cache). */
const warmCache = (files) => {
  const buffer = Buffer.allocUnsafe(4 * MiB)
  for (const file of files) {
    const fd = openSync(file, "r")
    while (readSync(fd, buffer, 0, buffer.length, null) > 0);
    closeSync(fd)
  }
}

export const opensslArgs = ["speed", "-bytes", "16384", "-seconds", "2", "-multi", String(availableParallelism()), "-evp", "sha256"]

/**
 * The machine's sha256 throughput on every core at once, in bytes/s: the 16384-byte column of
 * `openssl speed -seconds 2 -multi $(nproc) -evp sha256` (measured alone with -bytes 16384: 2 s, not 12).
 */
export const opensslSha256 = () => {
  const out = execFileSync("openssl", opensslArgs, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 60000 })
  const sizes = /^\+H:([\d:]+)/m.exec(out)?.[1].split(":") ?? ["16384"]
  const row = out.split("\n").findLast((l) => /^sha256\s/.test(l))
  const column = sizes.indexOf("16384")
  const cell = row?.trim().split(/\s+/)[column + 1]
  if (column < 0 || !cell?.endsWith("k")) throw new BenchError(`cannot read the 16384-byte column of openssl speed:\n${out}`)
  return Number.parseFloat(cell) * 1000 // "1234.56k": 1000s of bytes per second
}

export const partA = (base) => {
  const versions = env("BENCH_VERSIONS", 20)
  const mib = env("BENCH_MIB", 100)
  const bigMib = env("BENCH_BIG_MIB", 1024)
  const runs = env("BENCH_UPDATE_RUNS", 5)
  const started = performance.now()
  const warm = makeBigTree(base, "warm", versions, mib)
  const bytes = warm.files.reduce((n, f) => n + statSync(f).size, 0)
  const made = (performance.now() - started) / 1000
  warmCache(warm.files)
  // openssl and update alternate, so that both see the same load on the machine
  const throughputs = []
  const updates = []
  for (let i = 0; i < runs; i++) {
    throughputs.push(opensslSha256())
    updates.push(runUpdate(warm.root, 300000))
  }
  const tp = stats(throughputs)
  const wall = stats(updates.map((r) => r.seconds))
  // each openssl run's limit, in the order of the runs
  const runLimits = throughputs.map((t) => (2 * bytes) / t)
  const limits = stats(runLimits)
  const limit = (2 * bytes) / tp.med
  const ratio = wall.med / limit
  console.log(`\nA. update of ${versions} versions x ${mib} MiB random squashfs (${(bytes / 1024 ** 3).toFixed(2)} GiB, warm page cache${made > 1 ? `; tree made in ${made.toFixed(0)} s` : ""})`)
  line(`openssl sha256, ${availableParallelism()} cores, 16 KiB blocks`, `${fmt(stats(throughputs.map((t) => t / 1e6)), 0, "MB/s")}`)
  line("limit = 2 x rootfs bytes / that", `${limit.toFixed(2)} s (per run: ${limits.min.toFixed(2)}–${limits.max.toFixed(2)} s)`)
  line("update wall time", fmt(wall))
  line("  of which the rebuild itself (its log)", fmt(stats(updates.map((r) => r.inside))))
  line("update / limit", `${ratio.toFixed(2)}x (goal <= 1.35x: ${verdict(ratio, 1.35)})`)
  // each update against the openssl run just before it, which saw the same load on a shared machine: said
  // beside the verdict, which stays on the medians above
  line("  the same, per alternated pair (x)", fmt(stats(updates.map((r, i) => r.seconds / runLimits[i])), 2, ""))

  const big = makeBigTree(base, "big", 1, bigMib)
  warmCache(big.files)
  const bigRuns = [0, 1, 2].map(() => runUpdate(big.root, 300000))
  const rss = stats(bigRuns.map((r) => r.rssMiB * 1.048576)) // MB
  line(`update of one ${bigMib} MiB image, wall time`, fmt(stats(bigRuns.map((r) => r.seconds))))
  line("  peak RSS (workers included)", `${fmt(rss, 0, "MB")} (goal < 200 MB: ${rss.med < 200 ? "met" : "NOT met"})`)
  return { wall, limit, ratio, tp, rss }
}
