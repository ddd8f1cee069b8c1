// `add` of one small unified image into a tree whose catalog is written, as a child process: wall time and
// peak RSS. The catalog is put back as it was after each run, and the added folder removed.
import { execFileSync, spawnSync } from "node:child_process"
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { bin, rssHook } from "./paths.mjs"
import { BenchError } from "./util.mjs"

/** The product the added image makes: a new one beside the tree's. */
export const addedProduct = "bench-add/1/amd64/default"

/** A small unified image (metadata.yaml and a rootfs/ of one file), made once with tar. */
export const addImage = (base) => {
  const target = join(base, "add-unified.tar.gz")
  if (existsSync(target)) return target
  const work = join(base, "add-src")
  mkdirSync(join(work, "rootfs", "etc"), { recursive: true })
  writeFileSync(join(work, "metadata.yaml"), "architecture: x86_64\ncreation_date: 1704103200\nproperties:\n  os: bench-add\n  release: \"1\"\n  description: bench image\n")
  writeFileSync(join(work, "rootfs", "etc", "hostname"), "bench-add\n")
  execFileSync("tar", ["-czf", `${target}.tmp`, "-C", work, "metadata.yaml", "rootfs"])
  renameSync(`${target}.tmp`, target)
  return target
}

/** Runs `add` of `image` into `root` (with images/ and a written streams/v1/); fails unless it published in place. */
export const runAdd = (root, image, timeoutMs) => {
  const streams = join(root, "streams", "v1")
  const saved = ["images.json", "index.json"].map((name) => [join(streams, name), join(root, `${name}.before-add`)])
  for (const [file, copy] of saved) copyFileSync(file, copy)
  try {
    const started = performance.now()
    const r = spawnSync(
      process.execPath,
      ["--require", rssHook, bin, "--log-file", join(root, "add.log"), "--config", join(root, "none.toml"), "add", image, "--img-dir", join(root, "images"), "--streams-dir", streams, "--state-dir", join(root, "state")],
      { encoding: "utf8", timeout: timeoutMs, killSignal: "SIGKILL" }
    )
    const seconds = (performance.now() - started) / 1000
    if (r.error?.code === "ETIMEDOUT") throw new BenchError(`add into ${root} did not finish within ${(timeoutMs / 1000).toFixed(0)} s`)
    if (r.status !== 0) throw new BenchError(`add into ${root} failed (exit ${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`)
    if (!r.stderr.includes("its product alone rendered again")) throw new BenchError(`add into ${root} did not publish in place: ${r.stderr.slice(-2000)}`)
    if (!readFileSync(join(streams, "images.json"), "utf8").includes(`"images/${addedProduct}/`)) throw new BenchError(`add into ${root}: images.json does not list ${addedProduct}`)
    return { seconds, rssMiB: Number(/BENCH_MAX_RSS_KB=(\d+)/.exec(r.stderr)?.[1] ?? NaN) / 1024 }
  } finally {
    rmSync(join(root, "images", addedProduct.split("/")[0]), { recursive: true, force: true })
    for (const [file, copy] of saved) renameSync(copy, file)
  }
}
