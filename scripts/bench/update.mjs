// `update` as a child process: wall time, its own figure, peak RSS (worker threads included).
import { spawnSync } from "node:child_process"
import { readFileSync, rmSync } from "node:fs"
import { join } from "node:path"
import { bin, rssHook } from "./paths.mjs"
import { BenchError } from "./util.mjs"

/** Runs `update` over `root/images` into a fresh `root/streams/v1`; fails on any refusal or warning. */
export const runUpdate = (root, timeoutMs) => {
  rmSync(join(root, "streams"), { recursive: true, force: true })
  const started = performance.now()
  const r = spawnSync(
    process.execPath,
    ["--require", rssHook, bin, "--log-file", join(root, "update.log"), "--config", join(root, "none.toml"), "update", "--img-dir", join(root, "images"), "--streams-dir", join(root, "streams", "v1")],
    { encoding: "utf8", timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 256 * 1024 * 1024 }
  )
  const seconds = (performance.now() - started) / 1000
  if (r.error?.code === "ETIMEDOUT") throw new BenchError(`update over ${root} did not finish within ${(timeoutMs / 1000).toFixed(0)} s`)
  if (r.status !== 0) throw new BenchError(`update over ${root} failed (exit ${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`)
  if (/WARN/.test(r.stderr) || !/ 0 refused/.test(r.stderr)) throw new BenchError(`update over ${root} refused versions: ${r.stderr.slice(-2000)}`)
  const rssMiB = Number(/BENCH_MAX_RSS_KB=(\d+)/.exec(r.stderr)?.[1] ?? NaN) / 1024
  const inside = Number(/ in ([\d.]+) s/.exec(r.stderr)?.[1] ?? NaN)
  return { seconds, inside, rssMiB }
}

/** The rootfs paths listed in an images.json text, whatever its layout. */
export const listedRootfs = (text) => text.match(/"path":\s*"[^"]*\/rootfs\.squashfs"/g) ?? []

/** The versions of a catalog with their combined fingerprints and metadata hashes. */
export const catalogImages = (file) => {
  const catalog = JSON.parse(readFileSync(file, "utf8"))
  const out = []
  for (const product of Object.values(catalog.products))
    for (const version of Object.values(product.versions)) {
      const meta = version.items["lxd.tar.xz"] ?? version.items["incus.tar.xz"]
      out.push({ fingerprint: meta?.combined_squashfs_sha256, metadata: meta?.sha256 })
    }
  return out
}
