#!/usr/bin/env node
// npm run bench: the speed and memory goals of `update`, measured on this machine in one run.
//  1. a warm tree of 20 versions x 100 MiB squashfs: update's wall time and throughput, against a baseline
//     that hashes the same files once each on one core. Every rootfs byte is hashed twice by update (own +
//     combined), spread over the cores, so the 2-core hashing limit equals the 1-core once-each baseline.
//  2. peak RSS of update on one 1 GiB image.
// Options (env): BENCH_DIR (default $TMPDIR/lis-bench), BENCH_VERSIONS (20), BENCH_MIB (100), BENCH_BIG_MIB (1024).
import { execFileSync, spawnSync } from "node:child_process"
import { createHash, randomFillSync } from "node:crypto"
import { closeSync, existsSync, mkdirSync, openSync, readSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs"
import { availableParallelism, tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))
const bin = join(here, "..", "dist", "lxd-image-server.mjs")
const rssHook = join(here, "report-rss.mjs")
const base = process.env.BENCH_DIR ?? join(tmpdir(), "lis-bench")
const versions = Number(process.env.BENCH_VERSIONS ?? 20)
const mib = Number(process.env.BENCH_MIB ?? 100)
const bigMib = Number(process.env.BENCH_BIG_MIB ?? 1024)
const MiB = 1024 * 1024

const metadataTarball = (target) => {
  const work = join(base, "meta-src")
  mkdirSync(work, { recursive: true })
  writeFileSync(join(work, "metadata.yaml"), "architecture: x86_64\ncreation_date: 1704103200\nproperties:\n  os: Debian\n  release: bookworm\n  variant: default\n")
  execFileSync("tar", ["-cJf", target, "-C", work, "metadata.yaml"])
}

const randomFile = (target, size) => {
  if (existsSync(target) && statSync(target).size === size) return
  const fd = openSync(target, "w")
  const chunk = Buffer.alloc(4 * MiB)
  for (let left = size; left > 0; left -= chunk.length) {
    randomFillSync(chunk)
    writeSync(fd, chunk, 0, Math.min(left, chunk.length))
  }
  closeSync(fd)
}

const makeTree = (name, count, sizeMiB) => {
  const root = join(base, name)
  for (let i = 0; i < count; i++) {
    const v = join(root, "images", "debian", "bookworm", "amd64", "default", `202401${String(i + 1).padStart(2, "0")}_10:00`)
    mkdirSync(v, { recursive: true })
    if (!existsSync(join(v, "lxd.tar.xz"))) metadataTarball(join(v, "lxd.tar.xz"))
    randomFile(join(v, "rootfs.squashfs"), sizeMiB * MiB)
  }
  return root
}

const filesOf = (root, count) =>
  Array.from({ length: count }, (_, i) => join(root, "images", "debian", "bookworm", "amd64", "default", `202401${String(i + 1).padStart(2, "0")}_10:00`, "rootfs.squashfs"))

/** Hashes each file once, on this one thread: the 1-core baseline. Also warms the page cache. */
const hashOnce = (files) => {
  const buffer = Buffer.allocUnsafe(128 * 1024) // the fastest chunk size on this hardware, as the workers use
  const started = performance.now()
  for (const file of files) {
    const hash = createHash("sha256")
    const fd = openSync(file, "r")
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null)
      if (n === 0) break
      hash.update(buffer.subarray(0, n))
    }
    closeSync(fd)
    hash.digest("hex")
  }
  return (performance.now() - started) / 1000
}

const runUpdate = (root) => {
  rmSync(join(root, "streams"), { recursive: true, force: true })
  const started = performance.now()
  const r = spawnSync(process.execPath, ["--import", rssHook, bin, "--log-file", join(root, "bench.log"), "--config", join(root, "none.toml"), "update", "--img-dir", join(root, "images"), "--streams-dir", join(root, "streams", "v1")], { encoding: "utf8" })
  const seconds = (performance.now() - started) / 1000
  if (r.status !== 0) throw new Error(`update failed: ${r.stderr}`)
  if (/WARN/.test(r.stderr) || !/ 0 refused/.test(r.stderr)) throw new Error(`update refused versions: ${r.stderr}`)
  const rss = Number(/BENCH_MAX_RSS_KB=(\d+)/.exec(r.stderr)?.[1] ?? NaN) / 1024
  const inside = Number(/ in ([\d.]+) s/.exec(r.stderr)?.[1] ?? NaN)
  return { seconds, inside, rssMiB: rss }
}

if (!existsSync(bin)) throw new Error("build first: npm run build")
console.log(`lxd-image-server bench: ${availableParallelism()} cores, node ${process.version}, tree in ${base}`)

const warm = makeTree("warm", versions, mib)
const files = filesOf(warm, versions)
const bytes = files.reduce((n, f) => n + statSync(f).size, 0)
hashOnce(files) // warm the page cache
const baseline = Math.min(hashOnce(files), hashOnce(files))
const runs = [runUpdate(warm), runUpdate(warm), runUpdate(warm)]
const best = runs.reduce((a, b) => (a.seconds < b.seconds ? a : b))
const gib = bytes / 1024 ** 3
const ratio = best.seconds / baseline
console.log(`\n1. update of ${versions} versions x ${mib} MiB squashfs (${gib.toFixed(2)} GiB, warm cache), best of ${runs.length}`)
console.log(`   baseline, every file hashed once on 1 core : ${baseline.toFixed(2)} s  (${(bytes / MiB / baseline).toFixed(0)} MiB/s)`)
console.log(`   2-core hashing limit (2 hashes per byte)    : ${baseline.toFixed(2)} s`)
console.log(`   update wall time                            : ${best.seconds.toFixed(2)} s  (${(bytes / MiB / best.seconds).toFixed(0)} MiB/s of rootfs, ${((2 * bytes) / MiB / best.seconds).toFixed(0)} MiB/s hashed)`)
console.log(`   update / limit                              : ${ratio.toFixed(2)}x  (goal <= 1.30x: ${ratio <= 1.3 ? "met" : "NOT met"})`)
console.log(`   of which the rebuild itself (its own log)   : ${best.inside.toFixed(2)} s = ${(best.inside / baseline).toFixed(2)}x; the rest is Node starting and exiting`)
console.log(`   runs: ${runs.map((r) => r.seconds.toFixed(2)).join(" s, ")} s; peak RSS ${best.rssMiB.toFixed(0)} MiB`)

const big = makeTree("big", 1, bigMib)
hashOnce(filesOf(big, 1))
const bigRun = runUpdate(big)
console.log(`\n2. update of one ${bigMib} MiB image: ${bigRun.seconds.toFixed(2)} s, peak RSS ${bigRun.rssMiB.toFixed(0)} MiB (goal < 200 MB: ${bigRun.rssMiB * 1.048576 < 200 ? "met" : "NOT met"})`)
