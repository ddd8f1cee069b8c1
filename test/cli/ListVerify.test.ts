import { describe, expect, it } from "@effect/vitest"
import { mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { runBinAsync } from "../support/Bin.js"
import { writeMetadataTarball, writeQcow2, writeUnifiedTarball } from "../support/Images.js"
import { haveTools, inCI } from "../support/Tools.js"
import { addContainer, makeWebRoot, type WebRoot, writeSha256Sums } from "../support/Tree.js"
import { startWatch, waitFor } from "../support/WatchProcess.js"

const tools = haveTools("tar", "xz", "mksquashfs")
if (!tools && inCI()) throw new Error("tar, xz and mksquashfs are needed for these tests")

const v1 = "debian/bookworm/amd64/default/20240101_10:00"
const v2 = "debian/bookworm/amd64/default/20240102_10:00"

/** A container version and a version with a container and a VM sharing one metadata file, published by `update`. */
const publishedTree = async (): Promise<WebRoot> => {
  const w = makeWebRoot()
  addContainer(w, v1, "one")
  const both = addContainer(w, v2, "two")
  writeQcow2(join(both, "disk.qcow2"), "vm")
  const u = await run(w, "update", [])
  expect(u.code).toBe(0)
  return w
}

const run = (w: WebRoot, command: string, args: ReadonlyArray<string>) =>
  runBinAsync([
    "--log-file", join(w.root, "cli.log"), "--config", join(w.root, "none.toml"), command, "--img-dir", w.images, "--streams-dir", w.streams,
    ...(command === "update" ? [] : ["--state-dir", join(w.root, "state")]), ...args
  ])

const lines = (text: string) => text.split("\n").filter((l) => l !== "")

const imagesJson = (w: WebRoot) => join(w.streams, "images.json")

describe.skipIf(!tools)("lxd-image-server verify", { timeout: 120_000 }, () => {
  it("exits 0 on a good tree, saying what it checked", async () => {
    const w = await publishedTree()
    const v = await run(w, "verify", [])
    expect(v.stdout).toBe("")
    expect(v.stderr).toMatch(/INFO +verified 2 versions, 5 files, [\d.]+ MiB in [\d.]+ s: all hold/)
    expect(v.code).toBe(0)
  })

  it("catches a flipped byte in a rootfs: its sha256 and the combined fingerprint, exit 1", async () => {
    const w = await publishedTree()
    const file = join(w.version(v1), "rootfs.squashfs")
    const bytes = readFileSync(file)
    bytes[1000] = bytes[1000]! ^ 0xff
    writeFileSync(file, bytes)
    const v = await run(w, "verify", [])
    expect(v.code).toBe(1)
    const out = lines(v.stdout)
    expect(out.filter((l) => l.startsWith(`images/${v1}/rootfs.squashfs: sha256 is `))).toHaveLength(1)
    expect(out.filter((l) => l.startsWith(`images/${v1}/lxd.tar.xz + images/${v1}/rootfs.squashfs: combined fingerprint is `) && l.includes("combined_squashfs_sha256 says"))).toHaveLength(2)
    expect(out).toHaveLength(3)
    expect(v.stderr).toMatch(/ERROR +verified .*: 3 problem\(s\)/)
  })

  it("catches a truncated metadata file: its size, sha256 and every fingerprint it is part of", async () => {
    const w = await publishedTree()
    const file = join(w.version(v2), "lxd.tar.xz")
    const size = readFileSync(file).length
    truncateSync(file, 100)
    const v = await run(w, "verify", [])
    expect(v.code).toBe(1)
    const out = lines(v.stdout)
    expect(out).toContain(`images/${v2}/lxd.tar.xz: size is 100 bytes, the catalog says ${size} (listed by debian:bookworm:amd64:default 20240102_10:00 lxd.tar.xz)`)
    expect(out.some((l) => l.startsWith(`images/${v2}/lxd.tar.xz: sha256 is `))).toBe(true)
    expect(out.some((l) => l.startsWith(`images/${v2}/lxd.tar.xz + images/${v2}/disk.qcow2: combined fingerprint is`))).toBe(true)
    expect(out.some((l) => l.startsWith(`images/${v2}/lxd.tar.xz + images/${v2}/rootfs.squashfs: combined fingerprint is`))).toBe(true)
    expect(out.every((l) => l.includes(v2))).toBe(true)
  })

  it("catches a missing file, once per item that lists it", async () => {
    const w = await publishedTree()
    rmSync(join(w.version(v2), "disk.qcow2"))
    rmSync(join(w.version(v1), "lxd.tar.xz"))
    const v = await run(w, "verify", [])
    expect(v.code).toBe(1)
    expect(lines(v.stdout).sort()).toEqual([
      `images/${v1}/lxd.tar.xz: missing (listed by debian:bookworm:amd64:default 20240101_10:00 incus.tar.xz)`,
      `images/${v1}/lxd.tar.xz: missing (listed by debian:bookworm:amd64:default 20240101_10:00 lxd.tar.xz)`,
      `images/${v2}/disk.qcow2: missing (listed by debian:bookworm:amd64:default 20240102_10:00 disk.qcow2)`
    ])
  })

  it("catches a wrong combined fingerprint written into a hand-edited catalog", async () => {
    const w = await publishedTree()
    const catalog = JSON.parse(readFileSync(imagesJson(w), "utf8"))
    const item = catalog.products["debian:bookworm:amd64:default"].versions["20240102_10:00"].items["incus.tar.xz"]
    const right = item["combined_disk-kvm-img_sha256"]
    item["combined_disk-kvm-img_sha256"] = "0".repeat(64)
    writeFileSync(imagesJson(w), JSON.stringify(catalog))
    const v = await run(w, "verify", [])
    expect(v.code).toBe(1)
    expect(lines(v.stdout)).toEqual([
      `images/${v2}/lxd.tar.xz + images/${v2}/disk.qcow2: combined fingerprint is ${right}, combined_disk-kvm-img_sha256 says ${"0".repeat(64)} (listed by debian:bookworm:amd64:default 20240102_10:00 incus.tar.xz)`
    ])
  })

  it("exits 2 with one line when the catalog is missing, not JSON, or not a catalog clients accept", async () => {
    const w = makeWebRoot()
    const missing = await run(w, "verify", [])
    expect([missing.code, missing.stdout]).toEqual([2, ""])
    expect(missing.stderr.trim()).toBe(`lxd-image-server: ${imagesJson(w)}: does not exist (nothing published yet? run \`update\`)`)
    mkdirSync(w.streams, { recursive: true })
    writeFileSync(imagesJson(w), '{"products": {')
    const torn = await run(w, "verify", [])
    expect(torn.code).toBe(2)
    expect(lines(torn.stderr)).toHaveLength(1)
    expect(torn.stderr).toContain(`${imagesJson(w)}: not a catalog clients accept`)
    writeFileSync(imagesJson(w), JSON.stringify({ content_id: "images", datatype: "image-downloads", format: "products:1.0", products: { "a:b:amd64:c": { versions: {} } } }))
    const wrong = await run(w, "verify", [])
    expect(wrong.code).toBe(2)
    expect(wrong.stderr).toMatch(/not a catalog clients accept at products\.a:b:amd64:c\.aliases: is missing/)
  })

  it("names an index.json that disagrees with images.json", async () => {
    const w = await publishedTree()
    writeFileSync(join(w.streams, "index.json"), JSON.stringify({ format: "index:1.0", index: {} }))
    const v = await run(w, "verify", [])
    expect(v.code).toBe(1)
    expect(lines(v.stdout)).toEqual(["index.json: does not list debian:bookworm:amd64:default: clients never see it"])
  })
})

describe.skipIf(!tools)("lxd-image-server list", { timeout: 120_000 }, () => {
  it("lists a container and a VM image in each format, as the catalog offers them", async () => {
    const w = await publishedTree()
    const json = await run(w, "list", ["--format", "json"])
    expect(json.code).toBe(0)
    const doc = JSON.parse(json.stdout)
    expect(doc.format_version).toBe(1)
    expect(doc.images.map((r: Record<string, unknown>) => [r["version"], r["type"], r["ftype"]])).toEqual([
      ["20240101_10:00", "container", "squashfs"],
      ["20240102_10:00", "virtual-machine", "disk-kvm.img"],
      ["20240102_10:00", "container", "squashfs"]
    ])
    const catalog = JSON.parse(readFileSync(imagesJson(w), "utf8"))
    const meta = catalog.products["debian:bookworm:amd64:default"].versions["20240102_10:00"].items["lxd.tar.xz"]
    const vm = doc.images[1]
    expect(vm).toMatchObject({
      product: "debian:bookworm:amd64:default",
      fingerprint: meta["combined_disk-kvm-img_sha256"],
      size: meta.size + catalog.products["debian:bookworm:amd64:default"].versions["20240102_10:00"].items["disk.qcow2"].size,
      aliases: ["debian/bookworm/default", "debian/bookworm"],
      clients: ["incus", "lxd"]
    })

    const table = await run(w, "list", [])
    expect(table.code).toBe(0)
    expect(lines(table.stdout)[0]).toMatch(/^PRODUCT +VERSION +TYPE +FTYPE +FINGERPRINT +SIZE +ALIASES +CLIENTS$/)
    expect(lines(table.stdout)[2]).toMatch(new RegExp(`^debian:bookworm:amd64:default +20240102_10:00 +virtual-machine +disk-kvm\\.img +${vm.fingerprint} +${vm.size} +debian/bookworm/default,debian/bookworm +incus,lxd$`))

    const csv = await run(w, "list", ["--format", "csv"])
    expect(csv.stdout.split("\r\n")[2]).toBe(`debian:bookworm:amd64:default,20240102_10:00,virtual-machine,disk-kvm.img,${vm.fingerprint},${vm.size},"debian/bookworm/default,debian/bookworm","incus,lxd"`)

    const yaml = await run(w, "list", ["--format", "yaml"])
    expect(yaml.stdout).toContain(`  - product: "debian:bookworm:amd64:default"\n    os: "Debian"\n    release: "bookworm"\n    arch: "amd64"\n    variant: "default"\n    version: "20240102_10:00"\n    type: "virtual-machine"\n    ftype: "disk-kvm.img"\n    fingerprint: "${vm.fingerprint}"\n    size: ${vm.size}\n`)
    expect(lines(yaml.stdout).filter((l) => l.startsWith("  - product:"))).toHaveLength(3)
  })

  it("lists a unified image and removes it by a fingerprint prefix", async () => {
    const w = makeWebRoot()
    const v = w.version(v1)
    writeUnifiedTarball(join(v, "image.tar.gz"), { seed: "list" })
    writeSha256Sums(v)
    expect((await run(w, "update", [])).code).toBe(0)
    const item = JSON.parse(readFileSync(imagesJson(w), "utf8")).products["debian:bookworm:amd64:default"].versions["20240101_10:00"].items["lxd_combined.tar.gz"]
    const json = await run(w, "list", ["--format", "json"])
    expect(json.code, json.stderr).toBe(0)
    expect(JSON.parse(json.stdout).images).toEqual([expect.objectContaining({ type: "container", ftype: "lxd_combined.tar.gz", fingerprint: item.sha256, size: item.size, clients: ["incus", "lxd"] })])
    const table = await run(w, "list", [])
    expect(lines(table.stdout)[1]).toMatch(new RegExp(`^debian:bookworm:amd64:default +20240101_10:00 +container +lxd_combined\\.tar\\.gz +${item.sha256} `))
    const removed = await run(w, "remove", [item.sha256.slice(0, 12)])
    expect(removed.code, removed.stderr).toBe(0)
    expect(JSON.parse(readFileSync(imagesJson(w), "utf8")).products).toEqual({})
  })

  it("refuses an unknown format in one line", async () => {
    const w = makeWebRoot()
    const r = await run(w, "list", ["--format", "xml"])
    expect(r.code).not.toBe(0)
    expect(r.stdout + r.stderr).toContain("table, json, csv, yaml")
  })

  it("--refused: says why each unpublished version is left out, reading what watch has not", async () => {
    const w = await publishedTree()
    const broken = w.version("debian/bookworm/amd64/default/20240103_10:00")
    addContainer(w, "debian/bookworm/amd64/default/20240103_10:00", "three")
    writeFileSync(join(broken, "lxd.tar.xz"), "not a tarball at all")
    writeMetadataTarball(join(w.version("debian/bookworm/amd64/default/20240104_10:00"), "lxd.tar.xz"))
    addContainer(w, "debian/bookworm/arm64/default/20240105_10:00", "arch", { architecture: "x86_64" })
    const r = await run(w, "list", ["--refused", "--format", "json"])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({
      format_version: 1,
      refused: [
        { path: "debian/bookworm/amd64/default/20240103_10:00/lxd.tar.xz", reason: expect.stringContaining("not a tarball"), source: "read" },
        { path: "debian/bookworm/amd64/default/20240104_10:00", reason: expect.stringContaining("no rootfs file"), source: "scan" },
        { path: "debian/bookworm/arm64/default/20240105_10:00/lxd.tar.xz", reason: expect.stringContaining("architecture x86_64"), source: "read" }
      ]
    })
    // nothing was published or written by looking
    expect(JSON.parse(readFileSync(imagesJson(w), "utf8")).products["debian:bookworm:arm64:default"]).toBeUndefined()
  })

  it("--refused: takes watch's word from its journal while the files are the ones it read", async () => {
    const w = makeWebRoot()
    addContainer(w, v1, "one")
    addContainer(w, v2, "two", { architecture: "aarch64" })
    const watch = startWatch(w)
    try {
      await waitFor("the refusal", () => watch.log().includes("metadata.yaml says architecture aarch64"))
      const r = await run(w, "list", ["--refused", "--format", "csv"])
      expect(r.code).toBe(0)
      expect(r.stdout.split("\r\n")[1]).toBe(`${v2}/lxd.tar.xz,"metadata.yaml says architecture aarch64, but the folder says amd64",journal`)
    } finally {
      await watch.stop()
    }
  })
})
