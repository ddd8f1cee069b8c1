import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { buildCatalog, catalogVersionDirs, type HashedVersion, metadataSources } from "../../src/indexer/Catalog.js"
import { canonicalJson, Images, Index } from "../../src/simplestreams/Streams.js"
import { combined, files, hashedVersions } from "../support/Vectors.js"

const { debian: P1, alpine: P2, fedora: P3 } = hashedVersions

describe("buildCatalog with the §6 test vectors", () => {
  const { images, index, refusals } = buildCatalog([P3, P1, P2], { compat: "both", imagesPath: "images" })

  it("writes one metadata item per client, both pointing at the one file, with every combined hash", () => {
    const items = images.products["debian:bookworm:amd64:default"]!.versions["20260822_0742"]!.items
    const metaItem = {
      path: "images/debian/bookworm/amd64/default/20260822_0742/incus.tar.xz",
      size: 21,
      sha256: files.m1.sha256,
      combined_squashfs_sha256: combined.m1s1,
      "combined_disk-kvm-img_sha256": combined.m1q1
    }
    expect(items["incus.tar.xz"]).toEqual({ ftype: "incus.tar.xz", ...metaItem })
    expect(items["lxd.tar.xz"]).toEqual({ ftype: "lxd.tar.xz", ...metaItem })
    expect(items["rootfs.squashfs"]).toEqual({ ftype: "squashfs", path: "images/debian/bookworm/amd64/default/20260822_0742/rootfs.squashfs", size: 21, sha256: files.s1.sha256 })
    expect(items["disk.qcow2"]).toEqual({ ftype: "disk-kvm.img", path: "images/debian/bookworm/amd64/default/20260822_0742/disk.qcow2", size: 18, sha256: files.q1.sha256 })
  })

  it("sets combined_sha256 = combined_rootxz_sha256 for root.tar.xz, and never for squashfs", () => {
    const item = images.products["alpine:3.20:arm64:default"]!.versions["20260822_0742"]!.items["lxd.tar.xz"]!
    expect(item.combined_rootxz_sha256).toBe(combined.m2r2)
    expect(item.combined_sha256).toBe(combined.m2r2)
    const debian = images.products["debian:bookworm:amd64:default"]!.versions["20260822_0742"]!.items["lxd.tar.xz"]!
    expect(debian.combined_sha256).toBeUndefined()
  })

  it("writes the product fields as strings, with aliases", () => {
    const { versions: _, ...fields } = images.products["debian:bookworm:amd64:default"]!
    expect(fields).toEqual({ aliases: "debian/bookworm/default,debian/bookworm", arch: "amd64", os: "Debian", release: "bookworm", release_title: "bookworm", variant: "default" })
    expect(images.products["fedora:40:amd64:cloud"]!.aliases).toBe("fedora/40/cloud")
  })

  it("lists exactly the products of images.json in the index, sorted", () => {
    expect(index.index.images?.products).toEqual(["alpine:3.20:arm64:default", "debian:bookworm:amd64:default", "fedora:40:amd64:cloud"])
    expect(Object.keys(images.products)).toEqual(index.index.images?.products)
    expect(refusals).toEqual([])
  })

  it("validates with the schemas and gives the same bytes whatever the input order", () => {
    expect(() => Schema.encodeSync(Images)(images)).not.toThrow()
    expect(() => Schema.encodeSync(Index)(index)).not.toThrow()
    const again = buildCatalog([P2, P1, P3], { compat: "both", imagesPath: "images" })
    expect(canonicalJson(again.images)).toBe(canonicalJson(images))
    expect(canonicalJson(images)).toMatch(/^\{\n {2}"content_id": "images",\n {2}"datatype"/)
  })

  it("writes only the lxd or only the incus item in those modes", () => {
    const lxd = buildCatalog([P1], { compat: "lxd", imagesPath: "images" }).images
    expect(Object.keys(lxd.products["debian:bookworm:amd64:default"]!.versions["20260822_0742"]!.items)).toEqual(["disk.qcow2", "lxd.tar.xz", "rootfs.squashfs"])
    const incus = buildCatalog([P1], { compat: "incus", imagesPath: "images" }).images
    expect(Object.keys(incus.products["debian:bookworm:amd64:default"]!.versions["20260822_0742"]!.items)).toEqual(["disk.qcow2", "incus.tar.xz", "rootfs.squashfs"])
  })

  it("writes an index with no entry, and no empty products list, when there is nothing", () => {
    const empty = buildCatalog([], { compat: "both", imagesPath: "images" })
    expect(empty.index).toEqual({ format: "index:1.0", index: {} })
    expect(empty.images.products).toEqual({})
  })

  it("refuses a version whose image is already published: duplicate fingerprints break launches", () => {
    const twin: HashedVersion = { ...P1, ref: { ...P1.ref, version: "20260823_0742" } }
    const result = buildCatalog([twin, P1], { compat: "both", imagesPath: "images" })
    expect(Object.keys(result.images.products["debian:bookworm:amd64:default"]!.versions)).toEqual(["20260822_0742"])
    expect(result.refusals).toEqual([
      { _tag: "Refusal", path: "debian/bookworm/amd64/default/20260823_0742", reason: expect.stringContaining("the same image as debian/bookworm/amd64/default/20260822_0742") }
    ])
  })

  it("keeps the version already published when a copy of its image arrives under another name", () => {
    const copy: HashedVersion = { ...P1, ref: { ...P1.ref, os: "adebian" } }
    const result = buildCatalog([copy, P1], { compat: "both", imagesPath: "images", incumbents: new Set(["debian/bookworm/amd64/default/20260822_0742"]) })
    expect(Object.keys(result.images.products)).toEqual(["debian:bookworm:amd64:default"])
    expect(result.refusals.map((r) => r.path)).toEqual(["adebian/bookworm/amd64/default/20260822_0742"])
    expect(catalogVersionDirs(result.images, "images")).toEqual(new Set(["debian/bookworm/amd64/default/20260822_0742"]))
  })

  it("warns of an alias two products claim for one architecture", () => {
    const kernelName: HashedVersion = { ...P3, ref: { ...P3.ref, arch: "x86_64" }, rootfs: [{ ...P3.rootfs[0]!, combined: { "incus.tar.xz": "f".repeat(64) } }] }
    const result = buildCatalog([P3, kernelName], { compat: "both", imagesPath: "images" })
    expect(result.aliasClashes).toEqual(["alias fedora/40/cloud (x86_64) is claimed by fedora:40:amd64:cloud and fedora:40:x86_64:cloud: clients pick one of them silently"])
    expect(buildCatalog([P1, P2, P3], { compat: "both", imagesPath: "images" }).aliasClashes).toEqual([])
  })

  it("points each client's item at its own metadata file when the version has both", () => {
    expect(metadataSources("both", ["incus.tar.xz", "lxd.tar.xz"])).toEqual([["incus.tar.xz", "incus.tar.xz"], ["lxd.tar.xz", "lxd.tar.xz"]])
    expect(metadataSources("both", ["lxd.tar.xz"])).toEqual([["incus.tar.xz", "lxd.tar.xz"], ["lxd.tar.xz", "lxd.tar.xz"]])
    expect(metadataSources("incus", ["incus.tar.xz", "lxd.tar.xz"])).toEqual([["incus.tar.xz", "incus.tar.xz"]])
  })

  it("uses a custom images folder in the item paths", () => {
    const { images: custom } = buildCatalog([P3], { compat: "incus", imagesPath: "pub/images" })
    expect(custom.products["fedora:40:amd64:cloud"]!.versions["20260822_0742"]!.items["disk.qcow2"]!.path).toBe("pub/images/fedora/40/amd64/cloud/20260822_0742/disk.qcow2")
  })
})
