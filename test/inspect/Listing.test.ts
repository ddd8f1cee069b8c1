import { describe, expect, it } from "@effect/vitest"
import { buildCatalog, type HashedVersion } from "../../src/indexer/Catalog.js"
import { generationLines } from "../../src/publish/Generations.js"
import { catalogVersions } from "../../src/retention/Lifecycle.js"
import { formatRows, imageRows, refusedRows, unexplainedPlans } from "../../src/inspect/Listing.js"
import type { Remembered } from "../../src/publish/Publisher.js"
import type { FoundPlan } from "../../src/tree/Scanner.js"
import { combined, files, hashedVersions } from "../support/Vectors.js"

const { debian, alpine } = hashedVersions
const ref = debian.ref
const images = buildCatalog([debian, alpine], { compat: "both", imagesPath: "images" }).images

describe("imageRows", () => {
  const rows = imageRows(images)

  it("gives one row per image: a container and a VM of one version, each seen by both clients through one metadata file", () => {
    expect(rows.map((r) => [r.product, r.type, r.ftype, r.fingerprint, r.size, r.clients])).toEqual([
      ["alpine:3.20:arm64:default", "container", "root.tar.xz", combined.m2r2, files.m2.size + files.r2.size, ["incus", "lxd"]],
      ["debian:bookworm:amd64:default", "virtual-machine", "disk-kvm.img", combined.m1q1, files.m1.size + files.q1.size, ["incus", "lxd"]],
      ["debian:bookworm:amd64:default", "container", "squashfs", combined.m1s1, files.m1.size + files.s1.size, ["incus", "lxd"]]
    ])
    expect(rows[1]).toMatchObject({ os: "Debian", release: "bookworm", arch: "amd64", variant: "default", version: "20260822_0742", aliases: ["debian/bookworm/default", "debian/bookworm"] })
  })

  it("gives a client only the images whose metadata item carries a fingerprint for them", () => {
    const lxdOnly = buildCatalog([alpine], { compat: "lxd", imagesPath: "images" }).images
    expect(imageRows(lxdOnly).map((r) => r.clients)).toEqual([["lxd"]])
    const edited = structuredClone(lxdOnly) as typeof lxdOnly
    const item = edited.products["alpine:3.20:arm64:default"]!.versions["20260822_0742"]!.items["lxd.tar.xz"] as Record<string, unknown>
    delete item["combined_sha256"]
    delete item["combined_rootxz_sha256"]
    expect(imageRows(edited)).toEqual([])
  })
})

describe("a unified image", () => {
  const unified: HashedVersion = {
    ref: { os: "tiny", release: "1", arch: "amd64", variant: "default", version: "20240101_10:00" },
    metadata: [],
    rootfs: [],
    unified: { name: "image.tar.gz", size: 123, sha256: "ab".repeat(32), metadata: hashedVersions.debian.metadata[0]!.metadata }
  }
  it.each([["both", ["incus", "lxd"], "lxd_combined.tar.gz"], ["lxd", ["lxd"], "lxd_combined.tar.gz"], ["incus", ["incus"], "incus_combined.tar.gz"]] as const)(
    "is one container row, its fingerprint the tarball's sha256 (compat %s)",
    (compat, clients, ftype) => {
      const catalog = buildCatalog([unified, alpine], { compat, imagesPath: "images" }).images
      expect(imageRows(catalog).filter((r) => r.product === "tiny:1:amd64:default")).toEqual([
        {
          product: "tiny:1:amd64:default", os: "Debian", release: "1", arch: "amd64", variant: "default", version: "20240101_10:00",
          type: "container", ftype, fingerprint: "ab".repeat(32), size: 123, aliases: ["tiny/1/default", "tiny/1"], clients
        }
      ])
      expect(catalogVersions(catalog, "images").find((v) => v.product === "tiny:1:amd64:default")?.fingerprints).toEqual(["ab".repeat(32)])
    }
  )
  it("counts as one image in the log line of its publication", () => {
    const lines = generationLines({ number: 3, at: 0, added: [{ key: "tiny/1/amd64/default/20240101_10:00", version: unified, since: undefined }], withdrawn: [] })
    expect(lines).toEqual(["published tiny/1/amd64/default/20240101_10:00 (1 image) [generation 3]"])
  })
})

describe("formats", () => {
  const rows = imageRows(images)

  it("json: format_version 1 and every field, snake_case, numbers as numbers, aliases as a list", () => {
    const doc = JSON.parse(formatRows("json", "images", rows))
    expect(doc.format_version).toBe(1)
    expect(Object.keys(doc.images[0])).toEqual(["product", "os", "release", "arch", "variant", "version", "type", "ftype", "fingerprint", "size", "aliases", "clients"])
    expect(doc.images[0]).toMatchObject({ size: 43, aliases: ["alpine/3.20/default", "alpine/3.20"] })
    expect(JSON.parse(formatRows("json", "images", []))).toEqual({ format_version: 1, images: [] })
  })

  it("yaml: the same document, strings quoted so that 3.20 stays a string", () => {
    const text = formatRows("yaml", "images", rows.slice(0, 1))
    expect(text).toBe(
      [
        "format_version: 1",
        "images:",
        '  - product: "alpine:3.20:arm64:default"',
        '    os: "alpine"',
        '    release: "3.20"',
        '    arch: "arm64"',
        '    variant: "default"',
        '    version: "20260822_0742"',
        '    type: "container"',
        '    ftype: "root.tar.xz"',
        `    fingerprint: "${combined.m2r2}"`,
        "    size: 43",
        "    aliases:",
        '      - "alpine/3.20/default"',
        '      - "alpine/3.20"',
        "    clients:",
        '      - "incus"',
        '      - "lxd"',
        ""
      ].join("\n")
    )
    expect(formatRows("yaml", "refused", [])).toBe("format_version: 1\nrefused: []\n")
  })

  it("csv: a header, CRLF lines, lists comma-joined and quoted", () => {
    const lines = formatRows("csv", "images", rows).split("\r\n")
    expect(lines[0]).toBe("product,version,type,ftype,fingerprint,size,aliases,clients")
    expect(lines[1]).toBe(`alpine:3.20:arm64:default,20260822_0742,container,root.tar.xz,${combined.m2r2},43,"alpine/3.20/default,alpine/3.20","incus,lxd"`)
    expect(lines).toHaveLength(rows.length + 2)
    expect(formatRows("csv", "refused", [{ path: "a", reason: 'say "no"', source: "scan" }])).toBe('path,reason,source\r\na,"say ""no""",scan\r\n')
  })

  it("table: aligned columns under a header", () => {
    const lines = formatRows("table", "images", rows).trimEnd().split("\n")
    expect(lines[0]).toMatch(/^PRODUCT +VERSION +TYPE +FTYPE +FINGERPRINT +SIZE +ALIASES +CLIENTS$/)
    const at = lines[0]!.indexOf("FINGERPRINT")
    for (const line of lines.slice(1)) expect(line.slice(at, at + 64)).toMatch(/^[0-9a-f]{64}$/)
  })
})

describe("refusedRows", () => {
  const identity = (name: string, ino: number) => ({ name, dev: 1, ino, size: 10, mtimeMs: 1, ctimeMs: 1 })
  const plan = (version: string, ino: number): FoundPlan => ({
    _tag: "VersionPlan",
    ref: { ...ref, version },
    metadata: [{ ...identity("lxd.tar.xz", ino), path: `/x/${version}/lxd.tar.xz` } as FoundPlan["metadata"][number]],
    rootfs: [{ ...identity("rootfs.squashfs", ino + 1), path: `/x/${version}/rootfs.squashfs`, ftype: "squashfs" } as FoundPlan["rootfs"][number]]
  })
  const dir = (v: string) => `debian/bookworm/amd64/default/${v}`
  const refused = (v: string, ino: number, reason: string): Remembered => ({
    _tag: "Refused",
    files: [identity("lxd.tar.xz", ino), identity("rootfs.squashfs", ino + 1)],
    refusal: { _tag: "Refusal", path: `${dir(v)}/lxd.tar.xz`, reason }
  })
  const plans = [plan("20240101", 10), plan("20240102", 20), plan("20240103", 30), plan("20240104", 40)]
  const input = {
    plans,
    refusals: [{ _tag: "Refusal" as const, path: "debian/bookworm/sparc", reason: "unknown architecture folder 'sparc'" }],
    published: new Set([dir("20240101")]),
    // 20240103's files changed since watch refused them: that reason is stale
    memory: new Map([
      [dir("20240102"), refused("20240102", 20, "metadata.yaml: no architecture")],
      [dir("20240103"), refused("20240103", 99, "old reason")]
    ])
  }

  it("asks to read only the unpublished versions watch has no word on for these very files", () => {
    expect(unexplainedPlans(input).map((p) => p.ref.version)).toEqual(["20240103", "20240104"])
  })

  it("takes the scan's reasons, the journal's while the files are the same, and what was read for the rest", () => {
    const rows = refusedRows({
      ...input,
      read: new Map([
        [dir("20240103"), { _tag: "Refusal", path: `${dir("20240103")}/lxd.tar.xz`, reason: "not a tarball" }],
        [dir("20240104"), undefined]
      ])
    })
    expect(rows.map((r) => [r.path, r.source, r.reason.slice(0, 20)])).toEqual([
      [`${dir("20240102")}/lxd.tar.xz`, "journal", "metadata.yaml: no ar"],
      [`${dir("20240103")}/lxd.tar.xz`, "read", "not a tarball"],
      [dir("20240104"), "read", "fit to publish, but "],
      ["debian/bookworm/sparc", "scan", "unknown architecture"]
    ])
  })
})
