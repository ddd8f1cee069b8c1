/**
 * A small incremental reader of tar headers, pure: fed the decompressed bytes of a metadata tarball chunk
 * by chunk, it keeps `metadata.yaml` (or `./metadata.yaml`) and reads on to the end of the archive, to tell a
 * metadata tarball from a unified image: it stops at the first `rootfs/` or `rootfs.img` entry, so a unified
 * image is never read further than needed. ustar, GNU long names and pax `path` records are understood.
 * It sees every decompressed byte, so it is also where a decompression bomb is stopped: past
 * `metadataTarballLimit` bytes it refuses, and its caller stops reading.
 */

export const metadataYamlLimit = 1024 * 1024 // the daemon reads at most 1 MiB of YAML

/**
 * A metadata tarball holds metadata.yaml (at most 1 MiB, see above) and a few templates: some KiB in practice.
 * 32 MiB leaves room for generous templates, yet stops a decompression bomb (a small file that decompresses to
 * GiBs, to be read to its end) after a fraction of a second of decompressing.
 */
export const metadataTarballLimit = 32 * 1024 * 1024
const tooLarge: TarScanResult = {
  _tag: "Invalid",
  reason: `decompresses to more than ${metadataTarballLimit / 1024 / 1024} MiB: not a metadata tarball`
}

export type TarScanResult =
  | { readonly _tag: "More" }
  | { readonly _tag: "Found"; readonly content: Uint8Array }
  | { readonly _tag: "Invalid"; readonly reason: string }

const more: TarScanResult = { _tag: "More" }

const text = (b: Uint8Array) => {
  const end = b.indexOf(0)
  return new TextDecoder().decode(end === -1 ? b : b.subarray(0, end))
}

const parseSize = (field: Uint8Array): number | undefined => {
  if ((field[0]! & 0x80) !== 0) {
    // base-256, used by GNU tar for sizes over 8 GiB
    let n = 0
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!
    return n
  }
  const s = text(field).trim()
  return /^[0-7]*$/.test(s) ? (s === "" ? 0 : parseInt(s, 8)) : undefined
}

const checksumOk = (h: Uint8Array): boolean => {
  const stored = parseInt(text(h.subarray(148, 156)).trim(), 8)
  let sum = 0
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!
  return stored === sum
}

const paxPath = (body: Uint8Array): string | undefined => {
  const records = new TextDecoder().decode(body)
  for (const m of records.matchAll(/\d+ path=([^\n]*)\n/g)) return m[1]
  return undefined
}

const isMetadataName = (name: string) => name === "metadata.yaml" || name === "./metadata.yaml"
const isRootfsName = (name: string) => /^(\.\/)?rootfs(\/|\.img$|$)/.test(name)
const isVmRootfsName = (name: string) => /^(\.\/)?rootfs\.img$/.test(name)

/**
 * `split`: a metadata tarball, which must hold no rootfs. `unified`: one tarball with metadata.yaml and then
 * `rootfs/`, as `lxc image export` and `incus image export` write it; the scan stops at `rootfs/`, so the image
 * itself is never decompressed.
 */
export type TarScanMode = "split" | "unified"

/** Why a tarball read as a unified image is not one: it holds metadata.yaml but no `rootfs/`. */
export const noRootfsReason = "no rootfs/ in the tarball: a metadata tarball, not a unified image"

export class TarScan {
  private buffer: Uint8Array = new Uint8Array(0)
  /** Bytes of a large entry's body still to discard before the next header. */
  private skip = 0
  private entries = 0
  private nextName: string | undefined
  private metadata: Uint8Array | undefined
  private done: TarScanResult | undefined
  /** Decompressed bytes pushed so far, skipped bodies included. */
  private read = 0

  constructor(private readonly mode: TarScanMode = "split") {}

  /**
   * Feeds the next decompressed bytes; returns Found or Invalid once the archive's end or a rootfs is seen, or
   * once more than `metadataTarballLimit` bytes came without either. The bytes are kept as they are, not
   * copied, until the scan is settled: the caller must not reuse their memory (every caller pushes fresh
   * chunks, or parts of one buffer read whole).
   */
  push(chunk: Uint8Array): TarScanResult {
    if (this.done) return this.done
    const room = metadataTarballLimit - this.read
    this.read += chunk.length
    if (chunk.length <= room) return this.consume(chunk)
    // what the bytes within the cap settle stands: only an archive still unsettled at the cap is refused
    const within = this.consume(chunk.subarray(0, room))
    return within._tag === "More" ? this.finish(tooLarge) : within
  }

  private consume(chunk: Uint8Array): TarScanResult {
    if (this.skip > 0) {
      const dropped = Math.min(this.skip, chunk.length)
      this.skip -= dropped
      chunk = chunk.subarray(dropped)
      if (chunk.length === 0) return more
    }
    if (this.buffer.length === 0) this.buffer = chunk
    else {
      const joined = new Uint8Array(this.buffer.length + chunk.length)
      joined.set(this.buffer)
      joined.set(chunk, this.buffer.length)
      this.buffer = joined
    }
    return this.step()
  }

  /** The stream ended: whatever was not found by now is not there. */
  end(): TarScanResult {
    if (this.done) return this.done
    if (this.metadata && this.mode === "unified") {
      return this.finish({ _tag: "Invalid", reason: noRootfsReason })
    }
    if (this.metadata) return this.finish({ _tag: "Found", content: this.metadata })
    return this.entries === 0
      ? this.finish({ _tag: "Invalid", reason: "not a tar archive" })
      : this.finish({ _tag: "Invalid", reason: "no metadata.yaml in the tarball" })
  }

  private finish(r: TarScanResult): TarScanResult {
    this.done = r
    this.buffer = new Uint8Array(0)
    return r
  }

  private step(): TarScanResult {
    for (;;) {
      if (this.buffer.length < 512) return more
      const header = this.buffer.subarray(0, 512)
      if (header.every((b) => b === 0)) return this.end()
      if (!checksumOk(header)) {
        return this.finish({
          _tag: "Invalid",
          reason: this.entries === 0 ? "not a tar archive" : "corrupt tar header"
        })
      }
      const size = parseSize(header.subarray(124, 136))
      if (size === undefined) return this.finish({ _tag: "Invalid", reason: "corrupt tar header (size)" })
      const type = String.fromCharCode(header[156]!)
      const magic = text(header.subarray(257, 263))
      const prefix = magic.startsWith("ustar") ? text(header.subarray(345, 500)) : ""
      const rawName = text(header.subarray(0, 100))
      const name = this.nextName ?? (prefix ? `${prefix}/${rawName}` : rawName)
      const padded = Math.ceil(size / 512) * 512
      const needsBody = type === "L" || type === "x" || (isMetadataName(name) && (type === "0" || type === "\0"))
      if (needsBody && size > metadataYamlLimit) {
        return this.finish({ _tag: "Invalid", reason: `${name} is larger than 1 MiB` })
      }
      if (needsBody && this.buffer.length < 512 + padded) return more
      const body = this.buffer.subarray(512, 512 + size)
      this.entries++
      if (type === "L") {
        this.nextName = text(body)
      } else if (type === "x") {
        this.nextName = paxPath(body)
      } else {
        this.nextName = undefined
        if (isMetadataName(name) && (type === "0" || type === "\0")) this.metadata = body.slice()
        if (isRootfsName(name) && this.mode === "split") {
          return this.finish({
            _tag: "Invalid",
            reason: "holds a rootfs: a unified image tarball, not a metadata tarball"
          })
        }
        if (isVmRootfsName(name)) {
          // LXD lists every unified image as a container (SIMPLESTREAMS.md §5): a VM is published split
          return this.finish({ _tag: "Invalid", reason: "a unified VM image (rootfs.img): publish a VM as metadata tarball and qcow2" })
        }
        if (isRootfsName(name)) {
          return this.finish(
            this.metadata
              ? { _tag: "Found", content: this.metadata }
              : { _tag: "Invalid", reason: "rootfs/ comes before metadata.yaml: not a unified image as lxc or incus export it" }
          )
        }
      }
      // skip this entry's body without keeping it: bodies of other entries may be large
      if (this.buffer.length >= 512 + padded) {
        this.buffer = this.buffer.subarray(512 + padded)
      } else {
        this.skip = 512 + padded - this.buffer.length
        this.buffer = new Uint8Array(0)
        return more
      }
    }
  }
}
