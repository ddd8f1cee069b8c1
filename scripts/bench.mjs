#!/usr/bin/env node
// npm run bench: the speed and memory goals of `update`, measured on this machine in one run.
//  1. a warm tree of 20 versions x 100 MiB squashfs: update's wall time and throughput, against a baseline
//     that hashes the same files once each on one core. Every rootfs byte is hashed twice by update (own +
//     combined), spread over the cores, so the 2-core hashing limit equals the 1-core once-each baseline.
//  2. peak RSS of update on one 1 GiB image.
// Options (env): BENCH_DIR (default $TMPDIR/lis-bench), BENCH_VERSIONS (20), BENCH_MIB (100), BENCH_BIG_MIB (1024).
import { execFileSync, spawnSync } from "node:child_process"
import { createHash, randomFillSync } from "node:crypto"
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs"
import { availableParallelism, tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))
const bin = join(here, "..", "dist", "lxd-image-server.cjs")
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

// 3. watch over 1,000 versions: a restart that hashes nothing, the publish latency of a small new version,
//    and the service's memory.
const watchVersions = Number(process.env.BENCH_WATCH_VERSIONS ?? 1000)
const settleSeconds = 2
const wroot = join(base, "watch")
const wimages = join(wroot, "images")
const product = join(wimages, "debian", "bookworm", "amd64", "default")
const sharedMeta = join(base, "shared-lxd.tar.xz")
if (!existsSync(sharedMeta)) metadataTarball(sharedMeta)
for (let i = 0; i < watchVersions; i++) {
  const day = new Date(Date.UTC(2020, 0, 1) + i * 86400000).toISOString().slice(0, 10).replaceAll("-", "")
  const v = join(product, `${day}_10:00`)
  if (existsSync(join(v, "rootfs.squashfs"))) continue
  mkdirSync(v, { recursive: true })
  execFileSync("cp", [sharedMeta, join(v, "lxd.tar.xz")])
  const bytes = Buffer.alloc(4096)
  randomFillSync(bytes)
  writeFileSync(join(v, "rootfs.squashfs"), bytes)
}
rmSync(join(wroot, "streams"), { recursive: true, force: true })
rmSync(join(wroot, "state"), { recursive: true, force: true })
rmSync(join(product, "29991231_10:00"), { recursive: true, force: true })

const { spawn } = await import("node:child_process")
const startWatch = () => {
  const child = spawn(process.execPath, [bin, "--verbose", "--log-file", join(wroot, "bench.log"), "--config", join(wroot, "none.toml"), "watch", "--img-dir", wimages, "--streams-dir", join(wroot, "streams", "v1"), "--state-dir", join(wroot, "state"), "--pidfile", join(wroot, "watch.pid"), "--settle", String(settleSeconds)], { stdio: ["ignore", "ignore", "pipe"] })
  let log = ""
  child.stderr.on("data", (d) => (log += d))
  const started = performance.now()
  const until = async (re, timeoutMs = 120000) => {
    for (;;) {
      const m = re.exec(log)
      if (m) return { match: m, seconds: (performance.now() - started) / 1000 }
      if (performance.now() - started > timeoutMs) throw new Error(`watch: timed out waiting for ${re}\n${log.slice(-2000)}`)
      await new Promise((r) => setTimeout(r, 10))
    }
  }
  const stop = () => new Promise((r) => { child.once("exit", r); child.kill("SIGTERM") })
  const rss = () => {
    const status = readFileSync(`/proc/${child.pid}/status`, "utf8")
    return { now: Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024, peak: Number(/VmHWM:\s+(\d+)/.exec(status)[1]) / 1024 }
  }
  return { child, until, stop, rss }
}

const cold = startWatch()
const coldDone = await cold.until(/reconciled (\d+) versions in ([\d.]+) s \((\d+) hashed/)
// versions written in the last seconds are published once they settle: wait for all before the restart
for (const t0 = performance.now(); ; ) {
  const text = existsSync(join(wroot, "streams", "v1", "images.json")) ? readFileSync(join(wroot, "streams", "v1", "images.json"), "utf8") : ""
  if ((text.match(/"rootfs.squashfs": \{/g) ?? []).length >= watchVersions) break
  if (performance.now() - t0 > 60000) throw new Error("the first start did not publish every version")
  await new Promise((r) => setTimeout(r, 100))
}
await cold.stop()
const warmStart = startWatch()
const warmDone = await warmStart.until(/reconciled (\d+) versions in ([\d.]+) s \((\d+) hashed, (\d+) from the hash cache\)/)
console.log(`\n3. watch over ${watchVersions} versions`)
console.log(`   first start (nothing cached)    : catalog written ${coldDone.seconds.toFixed(2)} s after launch (${coldDone.match[3]} versions hashed)`)
console.log(`   restart over unchanged versions : catalog reconciled ${warmDone.seconds.toFixed(2)} s after launch, ${warmDone.match[3]} hashed, ${warmDone.match[4]} from the cache (goal < 2 s, hashing nothing: ${warmDone.seconds < 2 && warmDone.match[3] === "0" ? "met" : "NOT met"})`)
// publish latency: a small new version, written at once (metadata last, as an upload finishes)
const fresh = join(product, "29991231_10:00")
mkdirSync(fresh)
writeFileSync(join(fresh, "rootfs.squashfs"), randomFillSync(Buffer.alloc(4096)))
execFileSync("cp", [sharedMeta, join(fresh, "lxd.tar.xz")])
const written = performance.now()
const indexPath = join(wroot, "streams", "v1", "images.json")
for (;;) {
  if (readFileSync(indexPath, "utf8").includes("29991231_10:00")) break
  if (performance.now() - written > 30000) throw new Error("the new version was not published within 30 s")
  await new Promise((r) => setTimeout(r, 5))
}
const latency = (performance.now() - written) / 1000
console.log(`   publish latency of a new version: ${latency.toFixed(2)} s after its last write (settle ${settleSeconds} s; goal <= ${settleSeconds + 1} s: ${latency <= settleSeconds + 1 ? "met" : "NOT met"})`)
const mem = warmStart.rss()
console.log(`   memory of the service           : RSS ${mem.now.toFixed(0)} MiB now, peak ${mem.peak.toFixed(0)} MiB`)
await warmStart.stop()
rmSync(fresh, { recursive: true, force: true })
