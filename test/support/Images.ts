/** Builds real image files for tests: metadata tarballs with tar and xz, squashfs with mksquashfs, qcow2-like disks. */
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync, writeSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"

export const tempDir = (prefix = "lis-test-"): string => mkdtempSync(join(tmpdir(), prefix))

export interface MetadataYamlOptions {
  readonly architecture?: string
  readonly creationDate?: number
  readonly os?: string
  readonly release?: string
  readonly variant?: string
  /** More properties (incus-simplestreams wants `architecture` there too). */
  readonly properties?: Readonly<Record<string, string>>
}

export const metadataYaml = (o: MetadataYamlOptions = {}): string =>
  [
    `architecture: ${o.architecture ?? "x86_64"}`,
    `creation_date: ${o.creationDate ?? 1704103200}`,
    "properties:",
    `  os: ${o.os ?? "Debian"}`,
    `  release: ${o.release ?? "bookworm"}`,
    `  variant: ${o.variant ?? "default"}`,
    `  description: test image`,
    ...Object.entries(o.properties ?? {}).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`),
    "templates: {}",
    ""
  ].join("\n")

export type Compression = "xz" | "gzip" | "bzip2" | "none"

/** A metadata tarball at `target` holding `metadata.yaml` (or `./metadata.yaml` with dotSlash). */
export const writeMetadataTarball = (
  target: string,
  yaml: string = metadataYaml(),
  options: { readonly compression?: Compression; readonly dotSlash?: boolean; readonly extra?: Record<string, string> } = {}
): void => {
  const work = tempDir("lis-meta-")
  try {
    writeFileSync(join(work, "metadata.yaml"), yaml)
    mkdirSync(join(work, "templates"))
    writeFileSync(join(work, "templates", "hostname.tpl"), "{{ container.name }}\n")
    for (const [name, content] of Object.entries(options.extra ?? {})) {
      mkdirSync(dirname(join(work, name)), { recursive: true })
      writeFileSync(join(work, name), content)
    }
    mkdirSync(dirname(target), { recursive: true })
    const flag = { xz: "-J", gzip: "-z", bzip2: "-j", none: "" }[options.compression ?? "xz"]
    const members = options.dotSlash ? ["."] : ["metadata.yaml", "templates", ...Object.keys(options.extra ?? {})]
    execFileSync("tar", [
      "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@1704103200",
      `-c${flag.replace("-", "")}f`, target, "-C", work, ...members
    ])
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/**
 * A unified image at `target`, as `lxc image export` writes one: metadata.yaml, templates/, then rootfs/, in one
 * tarball compressed by `compression`. `rootfsFirst` puts rootfs/ before metadata.yaml.
 */
export const writeUnifiedTarball = (
  target: string,
  options: { readonly yaml?: string; readonly compression?: "gzip" | "xz" | "zstd"; readonly seed?: string; readonly rootfs?: Record<string, string>; readonly members?: ReadonlyArray<string> } = {}
): void => {
  const work = tempDir("lis-unified-")
  try {
    writeFileSync(join(work, "metadata.yaml"), options.yaml ?? metadataYaml())
    mkdirSync(join(work, "templates"))
    writeFileSync(join(work, "templates", "hostname.tpl"), "{{ container.name }}\n")
    for (const [name, content] of Object.entries(options.rootfs ?? { "rootfs/etc/hostname": `unified-${options.seed ?? "1"}\n` })) {
      mkdirSync(dirname(join(work, name)), { recursive: true })
      writeFileSync(join(work, name), content)
    }
    mkdirSync(dirname(target), { recursive: true })
    const flag = { gzip: "--gzip", xz: "--xz", zstd: "--zstd" }[options.compression ?? "gzip"]
    execFileSync("tar", [
      "--owner=0", "--group=0", "--numeric-owner", "--mtime=@1704103200", flag, "-cf", target, "-C", work,
      ...(options.members ?? ["metadata.yaml", "templates", ...new Set(Object.keys(options.rootfs ?? { rootfs: "" }).map((n) => n.split("/")[0]!))])
    ])
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/** Makes `target` with `build` from a tiny root filesystem of `files`, in a temp folder removed after. */
const fromTinyRoot = (target: string, files: Record<string, string>, build: (root: string) => void): void => {
  const work = tempDir("lis-rootfs-")
  try {
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(dirname(join(work, name)), { recursive: true })
      writeFileSync(join(work, name), content)
    }
    mkdirSync(dirname(target), { recursive: true })
    build(work)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/** A real squashfs of a tiny root filesystem; `seed` makes its bytes differ between versions. */
export const writeSquashfs = (target: string, seed = "1"): void =>
  fromTinyRoot(target, { "etc/hostname": `test-${seed}\n`, "etc/os-release": 'ID=debian\nVERSION_ID="12"\n' }, (root) =>
    execFileSync("mksquashfs", [root, target, "-noappend", "-quiet", "-no-progress", "-all-root", "-mkfs-time", "1704103200", "-all-time", "1704103200"], { stdio: "ignore" })
  )

/**
 * A squashfs a container can boot: static busybox as /bin/busybox, /sbin/init a link to it, and an inittab that
 * keeps one process alive. `seed` goes into /etc/hostname, so that versions differ.
 */
export const writeBusyboxSquashfs = (target: string, seed = "1"): void =>
  fromTinyRoot(
    target,
    { "etc/hostname": `busybox-${seed}\n`, "etc/inittab": "::sysinit:/bin/busybox true\n::respawn:/bin/busybox sleep 3600\n" },
    (root) => {
      for (const dir of ["bin", "sbin", "dev", "proc", "sys", "tmp", "root"]) mkdirSync(join(root, dir), { recursive: true })
      copyFileSync("/bin/busybox", join(root, "bin", "busybox"))
      symlinkSync("/bin/busybox", join(root, "sbin", "init"))
      symlinkSync("busybox", join(root, "bin", "sh"))
      execFileSync("mksquashfs", [root, target, "-noappend", "-quiet", "-no-progress", "-all-root", "-mkfs-time", "1704103200", "-all-time", "1704103200"], { stdio: "ignore" })
    }
  )

/** A rootfs tarball (xz) of a tiny root filesystem. */
export const writeRootTarXz = (target: string, seed = "1"): void =>
  fromTinyRoot(target, { "etc/hostname": `tar-${seed}\n` }, (root) =>
    execFileSync("tar", ["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@1704103200", "-cJf", target, "-C", root, "."])
  )

/**
 * The start of a squashfs that is `size` bytes long, as the hasher looks at it: the magic `hsqs`, and
 * `bytes_used` (at 40) no more than the file holds. For big or slowly written rootfs files whose bytes do not
 * matter, without running mksquashfs.
 */
export const squashfsHead = (size: number): Buffer => {
  const head = Buffer.alloc(96)
  head.write("hsqs", 0, "latin1")
  head.writeBigUInt64LE(BigInt(size), 40)
  return head
}

/** A qcow2-like VM disk: the qcow2 magic `QFI\xfb` and some bytes. */
export const writeQcow2 = (target: string, seed = "1", size = 4096): void => {
  mkdirSync(dirname(target), { recursive: true })
  writeFileSync(target, Buffer.concat([Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]), Buffer.alloc(size, seed)]))
}

/** A ustar header for a regular file, as tar writes it: enough for TarScan and for GNU tar to list. */
export const tarHeader = (name: string, size: number): Buffer => {
  const h = Buffer.alloc(512)
  h.write(name, 0, 100, "utf8")
  h.write("0000644\0", 100)
  h.write("0000000\0", 108)
  h.write("0000000\0", 116)
  h.write(`${size.toString(8).padStart(11, "0")}\0`, 124)
  h.write(`${(1704103200).toString(8).padStart(11, "0")}\0`, 136)
  h.write("0", 156)
  h.write("ustar\0" + "00", 257)
  h.fill(" ", 148, 156)
  const sum = h.reduce((a, b) => a + b, 0)
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148)
  return h
}

/** One tar entry: header and body padded to whole blocks. */
export const tarEntry = (name: string, body: string | Uint8Array): Buffer => {
  const bytes = Buffer.from(body)
  return Buffer.concat([tarHeader(name, bytes.length), bytes, Buffer.alloc((512 - (bytes.length % 512)) % 512)])
}

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c >>> 0
})
const crc32 = (bytes: Uint8Array): number => {
  let c = 0xffffffff
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}
const uint32le = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n)
  return b
}
const vli = (n: number): Array<number> => {
  const out: Array<number> = []
  for (; n >= 0x80; n = Math.floor(n / 0x80)) out.push((n % 0x80) | 0x80)
  return [...out, n]
}
const readVli = (b: Uint8Array, at: number): [number, number] => {
  let n = 0
  for (let scale = 1; ; scale *= 0x80) {
    const byte = b[at++]!
    n += (byte & 0x7f) * scale
    if ((byte & 0x80) === 0) return [n, at]
  }
}

/** An xz stream's header, one block, and that block's index record: the parts a bomb is assembled from. */
interface XzBlock {
  readonly header: Buffer
  readonly block: Buffer
  readonly unpadded: number
  readonly uncompressed: number
}

/** Compresses `data` with `xz -0 -T1`: one block whose header holds no sizes, so only the index tells them. */
const xzBlock = (data: Buffer): XzBlock => {
  const stream = execFileSync("xz", ["-0", "-T1", "-c"], { input: data, maxBuffer: 64 * 1024 * 1024 })
  const indexStart = stream.length - 12 - (stream.readUInt32LE(stream.length - 8) + 1) * 4
  const [, record] = readVli(stream, indexStart + 1)
  const [unpadded, next] = readVli(stream, record)
  const [uncompressed] = readVli(stream, next)
  return { header: stream.subarray(0, 12), block: stream.subarray(12, indexStart), unpadded, uncompressed }
}

/**
 * One xz stream of these blocks, decompressed one after the other. With `claim`, the index says each block
 * holds `claim` bytes: `xz --list` believes it, and `xz -d` finds out only at the index, after writing every
 * byte. The CRCs are right, so the lie is well-formed.
 */
const xzStream = (blocks: ReadonlyArray<XzBlock>, claim?: number): Buffer => {
  const index = [0, ...vli(blocks.length), ...blocks.flatMap((b) => [...vli(b.unpadded), ...vli(claim ?? b.uncompressed)])]
  while (index.length % 4 !== 0) index.push(0)
  const indexBytes = Buffer.concat([Buffer.from(index), uint32le(crc32(Buffer.from(index)))])
  const header = blocks[0]!.header
  const footer = Buffer.concat([uint32le(indexBytes.length / 4 - 1), header.subarray(6, 8)])
  return Buffer.concat([header, ...blocks.map((b) => b.block), indexBytes, uint32le(crc32(footer)), footer, Buffer.from("YZ")])
}

/** The compressed zeros a bomb repeats, made once per process: compressing is the slow part. */
const bombUnit = 16 * 1024 * 1024
let xzZeros: XzBlock | undefined
let gzipZeros: Buffer | undefined

/**
 * A decompression bomb that still reads as a metadata tarball: a first entry of `zeros` bytes of zeros (a
 * multiple of 16 MiB), then a valid metadata.yaml as the LAST entry, so a reader without a cap finds it after
 * decompressing everything. 16 MiB of zeros is compressed once and repeated (xz: as blocks of one stream; gzip:
 * as members, which gzip -d reads as one), so a 256 MiB bomb takes well under a second to make. `none` writes
 * a sparse plain tar. With `lieAboutSize` (xz only), the index claims 512 bytes per block. A file already there
 * is kept: the bombs are cached in the test's temp folder.
 */
export const writeBombTarball = (
  target: string,
  zeros: number,
  options: { readonly compression: "xz" | "gzip" | "none"; readonly lieAboutSize?: boolean }
): void => {
  if (zeros % bombUnit !== 0) throw new Error(`a bomb's zeros come in 16 MiB units, not ${zeros} bytes`)
  if (existsSync(target)) return
  const head = tarHeader("zeros", zeros)
  const tail = Buffer.concat([tarEntry("metadata.yaml", metadataYaml()), Buffer.alloc(1024)])
  const units = zeros / bombUnit
  mkdirSync(dirname(target), { recursive: true })
  if (options.compression === "none") {
    const fd = openSync(target, "w")
    try {
      writeSync(fd, head, 0, head.length, 0)
      writeSync(fd, tail, 0, tail.length, 512 + zeros)
    } finally {
      closeSync(fd)
    }
  } else if (options.compression === "xz") {
    xzZeros ??= xzBlock(Buffer.alloc(bombUnit))
    const blocks = [xzBlock(head), ...Array.from({ length: units }, () => xzZeros!), xzBlock(tail)]
    writeFileSync(target, xzStream(blocks, options.lieAboutSize ? 512 : undefined))
  } else {
    const gzip = (bytes: Buffer) => execFileSync("gzip", ["-1", "-c"], { input: bytes, maxBuffer: 64 * 1024 * 1024 })
    gzipZeros ??= gzip(Buffer.alloc(bombUnit))
    writeFileSync(target, Buffer.concat([gzip(head), ...Array.from({ length: units }, () => gzipZeros!), gzip(tail)]))
  }
}

/** sha256 of the files' bytes one after the other: a file's own sum, or the combined fingerprint of metadata and rootfs. */
export const sha256Of = (...files: ReadonlyArray<string>): string => {
  const h = createHash("sha256")
  for (const f of files) h.update(readFileSync(f))
  return h.digest("hex")
}
