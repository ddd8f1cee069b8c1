// The trees the bench runs on, made once and kept under BENCH_DIR.
import { execFileSync } from "node:child_process"
import { randomFillSync } from "node:crypto"
import { closeSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs"
import { join } from "node:path"
import { MiB } from "./util.mjs"

const metadataYaml = "architecture: x86_64\ncreation_date: 1704103200\nproperties:\n  description: bench image\n"

/** A small xz metadata tarball, made once with tar and xz. */
export const sharedMetadata = (base) => {
  const target = join(base, "shared-lxd.tar.xz")
  if (existsSync(target)) return target
  const work = join(base, "meta-src")
  mkdirSync(work, { recursive: true })
  writeFileSync(join(work, "metadata.yaml"), metadataYaml)
  execFileSync("tar", ["-cJf", `${target}.tmp`, "-C", work, "metadata.yaml"])
  renameSync(`${target}.tmp`, target)
  return target
}

/**
 * Random bytes that pass for a squashfs of `size` bytes where the hasher looks (the magic `hsqs` at 0, and
 * `bytes_used` at 40): `update` and `watch` refuse a rootfs.squashfs that does not start like one.
 */
export const squashfsLike = (buffer, size = buffer.length) => {
  randomFillSync(buffer)
  buffer.write("hsqs", 0, "latin1")
  buffer.writeBigUInt64LE(BigInt(size), 40)
  return buffer
}

const startsLikeSquashfs = (file) => {
  const head = Buffer.alloc(4)
  const fd = openSync(file, "r")
  readSync(fd, head, 0, 4, 0)
  closeSync(fd)
  return head.toString("latin1") === "hsqs"
}

const randomFile = (target, size) => {
  if (existsSync(target) && statSync(target).size === size && startsLikeSquashfs(target)) return
  const fd = openSync(target, "w")
  const chunk = Buffer.alloc(Math.min(size, 4 * MiB))
  for (let left = size; left > 0; left -= chunk.length) {
    if (left === size) squashfsLike(chunk, size)
    else randomFillSync(chunk)
    writeSync(fd, chunk, 0, Math.min(left, chunk.length))
  }
  closeSync(fd)
}

/** Part A: `count` versions of one product, each a `sizeMiB` random squashfs. */
export const makeBigTree = (base, name, count, sizeMiB) => {
  const root = join(base, name)
  const meta = sharedMetadata(base)
  const files = []
  for (let i = 0; i < count; i++) {
    const v = join(root, "images", "debian", "bookworm", "amd64", "default", `202401${String(i + 1).padStart(2, "0")}_10:00`)
    mkdirSync(v, { recursive: true })
    if (!existsSync(join(v, "lxd.tar.xz"))) writeFileSync(join(v, "lxd.tar.xz"), readFileSync(meta))
    randomFile(join(v, "rootfs.squashfs"), sizeMiB * MiB)
    files.push(join(v, "rootfs.squashfs"))
  }
  return { root, files }
}

export const versionsPerProduct = 10
const versionName = (i) => `202401${String(i + 1).padStart(2, "0")}_10:00` // 20240101 … 20240110: real dates
const productPath = (j) => join(`os${j}`, "r", "amd64", "default")

/** The versions the publish step adds (and removes again): one per run (at most 10), in products spread over the tree. */
export const publishName = "20991231_10:00"
export const publishSlots = 10
export const publishKey = (products, k) => join(productPath(Math.floor((k * products) / publishSlots) % products), publishName)

/**
 * Part B: `n` tiny versions over ceil(n/10) products `os{j}/r/amd64/default`, each a copy (or a hard link,
 * `meta` = "link") of one small xz metadata tarball and a 4 KiB random rootfs.squashfs (`squashfsLike`). Made with sync calls in
 * this process; a marker written last says the tree is whole, so an interrupted build is made again.
 */
export const makeTinyTree = (base, n, meta) => {
  const root = join(base, `tiny-${n}-${meta}`)
  const images = join(root, "images")
  const products = Math.ceil(n / versionsPerProduct)
  const marker = join(root, "tree-complete.json")
  const expected = JSON.stringify({ n, meta, products, versionsPerProduct, rootfs: "squashfs-like" })
  const shared = sharedMetadata(base)
  if (existsSync(marker) && readFileSync(marker, "utf8") === expected) {
    cleanPublished(images, products)
    return { root, images, products, built: false, seconds: 0 }
  }
  const started = performance.now()
  rmSync(root, { recursive: true, force: true })
  const metaBytes = readFileSync(shared)
  const rootfs = Buffer.alloc(4096)
  for (let j = 0, made = 0; j < products; j++) {
    const product = join(images, productPath(j))
    mkdirSync(product, { recursive: true })
    for (let i = 0; i < versionsPerProduct && made < n; i++, made++) {
      const v = join(product, versionName(i))
      mkdirSync(v)
      writeFileSync(join(v, "rootfs.squashfs"), squashfsLike(rootfs))
      if (meta === "link") linkSync(shared, join(v, "lxd.tar.xz"))
      else writeFileSync(join(v, "lxd.tar.xz"), metaBytes)
    }
  }
  writeFileSync(marker, expected)
  return { root, images, products, built: true, seconds: (performance.now() - started) / 1000 }
}

/** Removes what an interrupted publish step may have left: the added versions and their staging folders. */
export const cleanPublished = (images, products) => {
  for (let k = 0; k < publishSlots; k++) {
    const key = publishKey(products, k)
    rmSync(join(images, key), { recursive: true, force: true })
    rmSync(join(images, key, "..", `.stage-${publishName}`), { recursive: true, force: true })
  }
}
