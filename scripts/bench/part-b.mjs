// Part B: many tiny versions. At one scale: update, chokidar alone, watch's cold start, warm restart,
// one-version publishes (latency and CPU) and memory. A step that fails (a timeout, a refusal) is reported and
// the steps that do not need it still run.
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { addImage, runAdd } from "./add.mjs"
import { makeTinyTree, publishKey, publishName, sharedMetadata, squashfsLike } from "./trees.mjs"
import { catalogImages, listedRootfs, runUpdate } from "./update.mjs"
import { BenchError, cpuSeconds, fmt, line, memory, repeat, sleep, stats, verdict } from "./util.mjs"
import { readyLine, reconciledLine, runChokidarAlone, startWatch, waitCatalog } from "./watch.mjs"

const env = (name, fallback) => process.env[name] ?? fallback
export const settle = Number(env("BENCH_SETTLE", 2))
const publishes = Math.min(10, Number(env("BENCH_PUBLISHES", 5)))
const publishMode = env("BENCH_PUBLISH", "write") // write: rootfs then metadata; rename: a hidden folder renamed into place
const meta = env("BENCH_META", "copy") // copy | link
/**
 * A publish's CPU is the service's utime + stime from the first write of the version until this long after
 * images.json lists it: what follows the write (the journal's append, the status, the collections V8 runs
 * after the burst) is part of its cost. Idle CPU in that window is counted too, and shown beside it.
 */
const cpuTail = 2.5
/**
 * Timeouts, in ms: they grow with the scale (generous for today's service on a busy 2-core machine), at most
 * 15 minutes a wait; BENCH_TIMEOUT_SCALE multiplies them all.
 */
const timeout = (seconds, perVersionMs, n) => Math.min(seconds * 1000 + perVersionMs * n, 900000) * Number(env("BENCH_TIMEOUT_SCALE", 1))
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** Metadata copied and hard-linked both give distinct images (the rootfs differ): checked on 20 versions each. */
export const checkMetadataModes = (base) => {
  for (const mode of ["copy", "link"]) {
    const tree = makeTinyTree(base, 20, mode)
    runUpdate(tree.root, 120000)
    const images = catalogImages(join(tree.root, "streams", "v1", "images.json"))
    const fingerprints = new Set(images.map((i) => i.fingerprint))
    const metadata = new Set(images.map((i) => i.metadata))
    if (images.length !== 20 || fingerprints.size !== 20 || metadata.size !== 1)
      throw new BenchError(`metadata ${mode}: ${images.length} versions, ${fingerprints.size} distinct images, ${metadata.size} metadata hashes (want 20, 20, 1)`)
  }
  console.log("   metadata copied or hard-linked: 20 versions give 20 distinct images either way (checked with update)")
}

const watchesFile = "/proc/sys/fs/inotify/max_user_watches"

/** How many inotify watches chokidar needs here (every folder and every file), and this user's limit. */
const inotifyNeed = (n, products) => {
  let limit = NaN
  try { limit = Number(readFileSync(watchesFile, "utf8")) } catch {}
  return { need: 1 + 4 * products + n + 2 * n, limit }
}

/**
 * Makes room for chokidar's watches: the limit is raised (as `sysctl fs.inotify.max_user_watches=N` would) when
 * this process may, else the steps that watch are skipped, saying why. Returns whether there is room.
 */
const roomForWatches = (n, products) => {
  const { need, limit } = inotifyNeed(n, products)
  if (need <= limit) return true
  const wanted = Math.max(1048576, Math.ceil((need * 1.5) / 1000) * 1000)
  try {
    writeFileSync(watchesFile, String(wanted))
    line("inotify watches", `raised fs.inotify.max_user_watches from ${limit} to ${wanted} (chokidar needs about ${need})`)
    return true
  } catch (e) {
    console.log(`   chokidar needs about ${need} inotify watches, more than fs.inotify.max_user_watches = ${limit}, and this user cannot raise it (${e.code ?? e.message}): the steps that watch are skipped. As root: sysctl fs.inotify.max_user_watches=${wanted}`)
    return false
  }
}

/** The steps of part B to run (BENCH_STEPS, default all). A warm restart or a publish without a cold start first runs one, unmeasured. */
const allSteps = ["update", "add", "chokidar", "cold", "warm", "publish"]
const steps = new Set((process.env.BENCH_STEPS ?? allSteps.join(",")).split(",").map((x) => x.trim()).filter(Boolean))
for (const name of steps) if (!allSteps.includes(name)) throw new BenchError(`BENCH_STEPS: one or more of ${allSteps.join(",")}; got ${name}`)

export const partB = async (base, n) => {
  const out = { n, steps: {}, failed: {} }
  /** Runs one step, timed; a BenchError is reported and gives undefined. */
  const step = async (name, fn) => {
    const t = performance.now()
    try {
      return await fn()
    } catch (e) {
      if (!(e instanceof BenchError)) throw e
      const [head, ...rest] = e.message.split("\n")
      out.failed[name] = head
      console.log(`   ${name} FAILED: ${head}`)
      if (rest.length) console.log(rest.join("\n").slice(-1500).replace(/^/gm, "     | ")) // the end of the service's log
      return undefined
    } finally {
      out.steps[name] = (performance.now() - t) / 1000
    }
  }
  const tree = await step("tree", () => makeTinyTree(base, n, meta))
  const { root, images, products } = tree
  const imagesJson = join(root, "streams", "v1", "images.json")
  const shared = sharedMetadata(base)
  console.log(`\nB. ${n.toLocaleString("en")} tiny versions over ${products.toLocaleString("en")} products (metadata ${meta === "link" ? "hard-linked" : "copied"}), in ${root}`)
  line("tree", tree.built ? `made in ${tree.seconds.toFixed(1)} s` : "cached")
  const watching = roomForWatches(n, products)

  // 1. update
  const updates = !steps.has("update") ? undefined : await step("update", () =>
    repeat(3, 30, () => {
      const r = runUpdate(root, timeout(60, 20, n))
      const listed = catalogImages(imagesJson)
      const distinct = new Set(listed.map((i) => i.fingerprint)).size
      if (listed.length !== n || distinct !== n) throw new BenchError(`update listed ${listed.length} versions, ${distinct} distinct images; want ${n}`)
      return r
    })
  )
  if (updates) {
    out.update = stats(updates.map((r) => r.seconds))
    out.updateRss = stats(updates.map((r) => r.rssMiB))
    line("1. update wall time", `${fmt(out.update)}${n === 10000 ? ` (goal <= 8 s: ${verdict(out.update.med, 8)})` : ""}`)
    line("   update peak RSS", fmt(out.updateRss, 0, "MiB"))
  }

  // 7. add of one image into the tree, its catalog written (no service running): one version published in place.
  // It runs here, after update wrote the catalog and before the steps that watch, which may end part B early.
  const adds = !steps.has("add") || !existsSync(imagesJson) ? undefined : await step("add", () => repeat(3, 30, () => runAdd(root, addImage(base), timeout(60, 2, n))))
  if (adds) {
    out.add = stats(adds.map((r) => r.seconds))
    out.addRss = stats(adds.map((r) => r.rssMiB))
    line("7. add of one image: wall time", `${fmt(out.add)}; peak RSS ${fmt(out.addRss, 0, "MiB")}`)
  }

  // 2. chokidar alone
  const alone = !watching || !steps.has("chokidar") ? undefined : await step("chokidar", () => repeat(3, 20, () => runChokidarAlone(images, timeout(30, 5, n))))
  if (alone) {
    out.chokidar = stats(alone.map((r) => r.seconds))
    out.chokidarRss = stats(alone.map((r) => r.rssMiB))
    out.chokidarErrors = alone[0].errors
    line("2. chokidar alone: launch -> ready", `${fmt(out.chokidar)} (in-process: ${fmt(stats(alone.map((r) => r.readyMs / 1000)))})`)
    line("   chokidar alone: VmRSS at ready", `${fmt(out.chokidarRss, 0, "MiB")}; ${alone[0].watched} paths watched${alone[0].errors ? `, ${alone[0].errors} errors (first: ${alone[0].firstError})` : ""}`)
  }

  // 3. cold start: no state, no streams, until images.json lists all n
  if (!watching || !["cold", "warm", "publish"].some((x) => steps.has(x))) return out
  const measuredCold = steps.has("cold")
  const colds = await step("cold", () =>
    repeat(measuredCold ? 3 : 1, 40, async () => {
      rmSync(join(root, "streams"), { recursive: true, force: true })
      rmSync(join(root, "state"), { recursive: true, force: true })
      const svc = startWatch(root, settle)
      try {
        const seen = await waitCatalog(imagesJson, `images.json to list all ${n} versions after a cold start`, timeout(120, 30, n), (text) => listedRootfs(text).length >= n, svc)
        await svc.stop(timeout(30, 1, n))
        return (seen - svc.launched) / 1000
      } finally {
        svc.kill()
      }
    })
  )
  if (!colds) return out
  if (measuredCold) {
    out.cold = stats(colds)
    line("3. watch cold start: launch -> all listed", fmt(out.cold))
  } else line("3. (a cold start, not measured: the state the warm restart needs)", fmt(stats(colds)))
  if (!steps.has("warm") && !steps.has("publish")) return out

  // 4. warm restarts: launch -> "reconciled … (0 hashed, …)" after the watcher is ready; the last one stays for the
  // publishes. Each measured one follows a run of chokidar alone, as openssl and update alternate in part A: the
  // goal is judged on the pairs, so that both see the same load on the machine.
  let svc
  const paired = steps.has("warm") && out.chokidar !== undefined
  const warms = await step("warm", () =>
    repeat(steps.has("warm") ? 3 : 1, paired ? 60 : 30, async () => {
      if (svc) await svc.stop(timeout(30, 1, n))
      const alone = paired ? (await runChokidarAlone(images, timeout(30, 5, n))).seconds : NaN
      svc = startWatch(root, settle)
      // the reconcile after chokidar is ready (a service whose watcher is slow reconciles once without it first)
      await svc.waitLog(readyLine, timeout(60, 10, n))
      const { match, at } = await svc.waitLog(reconciledLine, timeout(60, 10, n), svc.log.search(readyLine))
      return { seconds: (at - svc.launched) / 1000, alone, versions: Number(match[1]), hashed: Number(match[3]), cached: Number(match[4]) }
    })
  )
  if (!warms) {
    svc?.kill()
    return out
  }
  if (steps.has("warm")) {
    out.warm = stats(warms.map((w) => w.seconds))
    out.warmHashed = Math.max(...warms.map((w) => w.hashed))
    // the time over chokidar alone, pair by pair: at most 1 s
    out.warmAlone = stats(warms.map((w) => w.alone))
    out.warmOver = stats(warms.map((w) => w.seconds - w.alone))
    out.warmOk = out.warmHashed === 0 && warms.every((w) => w.versions === n) ? verdict(out.warmOver.med, 1) : "NOT met"
    line("4. watch warm restart: launch -> reconciled", `${fmt(out.warm)}, ${out.warmHashed} hashed, ${warms[0].cached} from the cache`)
    line("   chokidar alone, run just before each", fmt(out.warmAlone))
    line("   warm restart - chokidar alone, per pair", `${fmt(out.warmOver)} (goal <= 1 s, 0 hashed: ${out.warmOk})`)
  }
  if (!steps.has("publish")) {
    await svc.stop(timeout(30, 1, n)).finally(() => svc.kill())
    return out
  }

  // 5. one-version publishes on the warm, idle service; 6. its memory after them
  const keys = Array.from({ length: publishes }, (_, k) => publishKey(products, k))
  const metaBytes = readFileSync(shared)
  const writeVersion = (dir) => {
    mkdirSync(dir)
    writeFileSync(join(dir, "rootfs.squashfs"), squashfsLike(Buffer.alloc(4096)))
    if (meta === "link") linkSync(shared, join(dir, "lxd.tar.xz"))
    else writeFileSync(join(dir, "lxd.tar.xz"), metaBytes) // metadata last, as an upload finishes
  }
  await step("publish", async () => {
    try {
      await sleep(1000)
      const window = settle + 1 // s: the idle window measured before each publish
      const runs = []
      for (const key of keys) {
        const dir = join(images, key)
        const stage = join(dir, "..", `.stage-${publishName}`)
        if (publishMode === "rename") writeVersion(stage)
        // the service's CPU while idle, just before
        const i0 = performance.now()
        const c0 = cpuSeconds(svc.pid)
        await sleep(window * 1000)
        const idleRate = (cpuSeconds(svc.pid) - c0) / ((performance.now() - i0) / 1000)
        // the publish: from the first write until `cpuTail` after images.json lists it
        const from = svc.mark()
        const t0 = performance.now()
        const p0 = cpuSeconds(svc.pid)
        if (publishMode === "rename") renameSync(stage, dir)
        else writeVersion(dir)
        const last = performance.now()
        const seen = await waitCatalog(imagesJson, `images.json to list ${key}`, timeout(settle + 30, 1, n), (text) => text.includes(`/${key}/rootfs.squashfs"`), svc)
        await svc.waitLog(new RegExp(`published ${escape(key)}`), 10000, from)
        await sleep(seen + cpuTail * 1000 - performance.now())
        const spent = cpuSeconds(svc.pid) - p0
        const seconds = (performance.now() - t0) / 1000
        runs.push({ latency: (seen - last) / 1000, cpu: spent, idle: idleRate * seconds })
        await sleep(500)
      }
      out.latency = stats(runs.map((r) => r.latency))
      out.cpu = stats(runs.map((r) => r.cpu))
      out.idleCpu = stats(runs.map((r) => r.idle))
      line(`5. publish of one version (${publishMode === "rename" ? "folder renamed into place" : "rootfs, then metadata"})`, `last write -> listed ${fmt(out.latency)} (goal <= settle + 0.5 s = ${(settle + 0.5).toFixed(1)} s: ${verdict(out.latency.med, settle + 0.5)})`)
      line(`   its CPU (first write -> listed + ${cpuTail} s)`, `${fmt(out.cpu)}${n === 10000 ? ` (goal <= 0.15 s: ${verdict(out.cpu.med, 0.15)})` : ""}; of which idle, at the rate just before: ${fmt(out.idleCpu)}`)
      out.mem = memory(svc.pid)
      out.memGoal = (out.chokidarRss?.med ?? NaN) + 100
      line("6. watch VmRSS / VmHWM after the publishes", `${out.mem.rss.toFixed(0)} / ${out.mem.hwm.toFixed(0)} MiB (chokidar alone ${out.chokidarRss?.med.toFixed(0)} MiB; goal <= ${out.memGoal.toFixed(0)} MiB: RSS ${verdict(out.mem.rss, out.memGoal)}, peak ${verdict(out.mem.hwm, out.memGoal)})`)
    } finally {
      await removeAdded()
    }
  })

  /** Removes the added versions and sees the service take them out (logged, and gone from images.json). */
  async function removeAdded() {
    const from = svc.mark()
    const added = keys.filter((key) => svc.log.includes(`published ${key}`))
    for (const key of keys) {
      rmSync(join(images, key), { recursive: true, force: true })
      rmSync(join(images, key, "..", `.stage-${publishName}`), { recursive: true, force: true })
    }
    try {
      for (const key of added) await svc.waitLog(new RegExp(`removed ${escape(key)} from the catalog`), timeout(settle + 30, 1, n), from)
      await waitCatalog(imagesJson, "images.json to drop the added versions", timeout(settle + 30, 1, n), (text) => !keys.some((key) => text.includes(`/${key}/rootfs.squashfs"`)), svc)
      await svc.stop(timeout(30, 1, n))
    } finally {
      svc.kill()
    }
  }

  return out
}
