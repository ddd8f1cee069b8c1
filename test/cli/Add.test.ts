/** `add` as a user runs it: exports placed by their metadata, staged, renamed into place, published. */
import { describe, expect, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { runBin } from "../support/Bin.js"
import { metadataYaml, tempDir, writeMetadataTarball, writeSquashfs, writeUnifiedTarball } from "../support/Images.js"
import { haveTools } from "../support/Tools.js"
import { makeWebRoot } from "../support/Tree.js"

const sha = (...files: Array<string>) => {
  const h = createHash("sha256")
  for (const f of files) h.update(readFileSync(f))
  return h.digest("hex")
}

describe.skipIf(!haveTools("tar", "xz", "gzip", "mksquashfs"))("lxd-image-server add", () => {
  it("adds a unified export and a split one where their metadata says, prints the fingerprints, and publishes them", () => {
    const w = makeWebRoot()
    const exports = tempDir()
    writeUnifiedTarball(join(exports, "abc.tar.gz"))
    writeMetadataTarball(join(exports, "meta-abc.tar.xz"), metadataYaml({ release: "trixie" }))
    writeSquashfs(join(exports, "abc.squashfs"), "split")
    const add = (...args: Array<string>) =>
      runBin(["--log-file", join(w.root, "add.log"), "add", ...args, "--img-dir", w.images, "--streams-dir", w.streams])

    const unified = add(join(exports, "abc.tar.gz"), "--alias", "mine")
    expect(unified.code, unified.stderr).toBe(0)
    expect(unified.stdout).toBe(`${sha(join(exports, "abc.tar.gz"))}\n`)
    const split = add(join(exports, "meta-abc.tar.xz"), join(exports, "abc.squashfs"))
    expect(split.code, split.stderr).toBe(0)
    expect(split.stdout).toBe(`${sha(join(exports, "meta-abc.tar.xz"), join(exports, "abc.squashfs"))}\n`)

    expect(readdirSync(w.version("debian/bookworm/amd64/default/20240101_10:00")).sort()).toEqual(["SHA256SUMS", "image.tar.gz", "image.yaml"])
    expect(readdirSync(w.version("debian/trixie/amd64/default/20240101_10:00")).sort()).toEqual(["SHA256SUMS", "lxd.tar.xz", "rootfs.squashfs"])
    expect(readdirSync(w.version("debian/bookworm/amd64/default")).filter((n) => n.startsWith("."))).toEqual([])
    const images = JSON.parse(readFileSync(join(w.streams, "images.json"), "utf8"))
    expect(images.products["debian:bookworm:amd64:default"].aliases).toBe("debian/bookworm/default,debian/bookworm,mine")
    expect(images.products["debian:bookworm:amd64:default"].versions["20240101_10:00"].items["lxd_combined.tar.gz"].sha256).toBe(unified.stdout.trim())
    expect(images.products["debian:trixie:amd64:default"].versions["20240101_10:00"].items["lxd.tar.xz"].combined_squashfs_sha256).toBe(split.stdout.trim())

    // the same bytes again: a no-op; other bytes under that version: refused, exit 2, nothing changed
    const again = add(join(exports, "abc.tar.gz"))
    expect([again.code, again.stdout]).toEqual([0, unified.stdout])
    const before = readFileSync(join(w.streams, "images.json"))
    const other = add(join(exports, "abc.tar.gz"), "--release", "trixie")
    expect(other.code).toBe(2)
    expect(other.stderr.trim().split("\n")).toEqual([expect.stringContaining("debian/trixie/amd64/default/20240101_10:00: the version exists with other files")])
    expect(readFileSync(join(w.streams, "images.json"))).toEqual(before)
  })

  it("exits 2 with the file and the reason for input it cannot place", () => {
    const w = makeWebRoot()
    const exports = tempDir()
    writeMetadataTarball(join(exports, "meta.tar.xz"), "architecture: x86_64\ncreation_date: 1704103200\nproperties:\n  release: x\n")
    writeSquashfs(join(exports, "root.squashfs"))
    const add = (...args: Array<string>) => runBin(["--log-file", join(w.root, "add.log"), "add", ...args, "--img-dir", w.images, "--streams-dir", w.streams])
    const noOs = add(join(exports, "meta.tar.xz"), join(exports, "root.squashfs"))
    expect([noOs.code, noOs.stderr.trim()]).toEqual([2, `lxd-image-server: ${join(exports, "meta.tar.xz")}: metadata.yaml has no properties.os: give --os`])
    const alone = add(join(exports, "meta.tar.xz"))
    expect([alone.code, alone.stderr]).toEqual([2, expect.stringContaining("no rootfs/ in the tarball")])
    const swapped = add(join(exports, "root.squashfs"), join(exports, "meta.tar.xz"))
    expect(swapped.code).toBe(2)
    expect(readdirSync(w.images)).toEqual([])
  })
})
