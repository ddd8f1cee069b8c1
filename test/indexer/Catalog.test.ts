import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { aliasClaimOf, aliasClaimOfVersions, buildCatalog, catalogVersionDirs, type HashedVersion, metadataSources, productOf, resolveAliasClaims } from "../../src/indexer/Catalog.js"
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

describe("image.yaml in the product", () => {
  const image = {
    aliases: ["stable", "Debian/Current"],
    release_aliases: { bookworm: ["12"], trixie: ["13"] },
    distro_name: "Debian GNU/Linux",
    release_title: "12 (bookworm)",
    requirements: { secureboot: "false", cgroup: "v2" }
  }
  const older: HashedVersion = { ...P1, ref: { ...P1.ref, version: "20260101_0000" } }
  const newest: HashedVersion = { ...P1, image }
  it("the newest version's file names the product: aliases, release aliases, os, release_title", () => {
    const product = productOf([older, newest], { compat: "both", imagesPath: "images" })
    expect(product).toMatchObject({
      aliases: "debian/bookworm/default,debian/bookworm,debian/12/default,debian/12,stable,debian/current",
      os: "Debian GNU/Linux",
      release_title: "12 (bookworm)"
    })
    // an older version's file says nothing while a newer version has none
    expect(productOf([{ ...older, image }, P1], { compat: "both", imagesPath: "images" }).aliases).toBe("debian/bookworm/default,debian/bookworm")
  })
  it("writes requirements under the key each client of the compat mode reads, as strings", () => {
    const of = (compat: "both" | "lxd" | "incus") => productOf([newest], { compat, imagesPath: "images" })
    expect(of("both")).toMatchObject({ requirements: image.requirements, lxd_requirements: image.requirements })
    expect(of("incus").requirements).toEqual(image.requirements)
    expect(of("incus")).not.toHaveProperty("lxd_requirements")
    expect(of("lxd").lxd_requirements).toEqual(image.requirements)
    expect(of("lxd")).not.toHaveProperty("requirements")
    expect(productOf([P1], { compat: "both", imagesPath: "images" })).not.toHaveProperty("requirements")
    expect(Schema.decodeUnknownSync(Images)(JSON.parse(canonicalJson({ content_id: "images", datatype: "image-downloads", format: "products:1.0", products: { x: of("both") } })))).toBeTruthy()
  })
})

describe("resolveAliasClaims", () => {
  const claim = (key: string, since: string, aliases: Array<string>, types: Array<"container" | "virtual-machine"> = ["container"], arch = "x86_64") =>
    ({ key, since, aliases, types, arch })
  it("keeps an alias with the product that claimed it first, refuses the newer claim naming both", () => {
    const { kept, clashes } = resolveAliasClaims([
      claim("b:1:amd64:default", "20240201", ["b/1/default", "stable"]),
      claim("a:1:amd64:default", "20240101", ["a/1/default", "stable"])
    ])
    expect(kept).toEqual(new Map([["a:1:amd64:default", "a/1/default,stable"], ["b:1:amd64:default", "b/1/default"]]))
    expect(clashes).toEqual(["alias stable (x86_64) is claimed by a:1:amd64:default and b:1:amd64:default: a:1:amd64:default keeps it, b:1:amd64:default does not get it"])
  })
  it("lets one alias name a container and a VM, or two architectures; ties go by product key", () => {
    const { kept, clashes } = resolveAliasClaims([
      claim("c", "20240101", ["x"], ["container"]),
      claim("v", "20240101", ["x"], ["virtual-machine"]),
      claim("arm", "20240101", ["x"], ["container"], "aarch64"),
      claim("b", "20240101", ["y"]),
      claim("a", "20240101", ["y"])
    ])
    expect([...kept].sort()).toEqual([["a", "y"], ["arm", "x"], ["b", ""], ["c", "x"], ["v", "x"]])
    expect(clashes).toHaveLength(1)
  })
  it("keeps a product's folder-made aliases against an older image.yaml claim, naming both products and the alias", () => {
    // a backdated upload whose image.yaml names another product's aliases
    const { kept, clashes } = resolveAliasClaims([
      claim("busybox:1.36:amd64:default", "20240101_10:00", ["busybox/1.36/default", "busybox/1.36"]),
      claim("evil:1:amd64:default", "20200101_10:00", ["evil/1/default", "evil/1", "busybox/1.36", "busybox/1.36/default"])
    ])
    expect(kept).toEqual(new Map([["busybox:1.36:amd64:default", "busybox/1.36/default,busybox/1.36"], ["evil:1:amd64:default", "evil/1/default,evil/1"]]))
    expect(clashes).toEqual([
      "alias busybox/1.36 (x86_64) is claimed by busybox:1.36:amd64:default and evil:1:amd64:default: busybox:1.36:amd64:default keeps it (its folders make it), evil:1:amd64:default does not get it",
      "alias busybox/1.36/default (x86_64) is claimed by busybox:1.36:amd64:default and evil:1:amd64:default: busybox:1.36:amd64:default keeps it (its folders make it), evil:1:amd64:default does not get it"
    ])
  })
  it("between two folder-made claims, or two image.yaml claims, the older claim still wins", () => {
    const folders = resolveAliasClaims([
      claim("Debian:12:amd64:default", "20240201", ["debian/12/default", "debian/12"]),
      claim("debian:12:amd64:default", "20240101", ["debian/12/default", "debian/12"])
    ])
    expect(folders.kept).toEqual(new Map([["debian:12:amd64:default", "debian/12/default,debian/12"], ["Debian:12:amd64:default", ""]]))
    expect(folders.clashes).toHaveLength(2)
    const yamls = resolveAliasClaims([
      claim("b:1:amd64:cloud", "20240101", ["b/1/cloud", "a/1/cloud", "stable"]),
      claim("c:1:amd64:cloud", "20230101", ["c/1/cloud", "stable"])
    ])
    expect(yamls.kept).toEqual(new Map([["b:1:amd64:cloud", "b/1/cloud,a/1/cloud"], ["c:1:amd64:cloud", "c/1/cloud,stable"]]))
  })
  it("reads the claim off the product: canonical arch, types from the items, oldest version", () => {
    const product = productOf([P1, { ...P1, ref: { ...P1.ref, version: "20250101_0000" } }], { compat: "both", imagesPath: "images" })
    expect(aliasClaimOf("k", product).arch).toBe(aliasClaimOf("k", { ...product, arch: "x86_64" }).arch)
    expect(aliasClaimOf("k", product)).toEqual({
      key: "k", arch: "x86_64", types: ["container", "virtual-machine"], aliases: ["debian/bookworm/default", "debian/bookworm"], since: "20250101_0000"
    })
  })
  it("makes the same claim from the versions as from the product they make", () => {
    const unified: HashedVersion = {
      ref: { ...P2.ref, version: "20260901_0000" },
      metadata: [],
      rootfs: [],
      unified: { name: "incus.tar.xz", size: 3, sha256: "e".repeat(64), metadata: P2.metadata[0]!.metadata }
    }
    const withYaml: HashedVersion = { ...P1, ref: { ...P1.ref, version: "20270101_0000" }, image: { aliases: ["stable"], release_aliases: { bookworm: ["12"] } } }
    for (const versions of [[P1], [P2], [P3], [P1, withYaml], [withYaml, P1], [P2, unified]])
      for (const compat of ["both", "lxd", "incus"] as const)
        expect(aliasClaimOfVersions("k", versions, compat)).toEqual(aliasClaimOf("k", productOf(versions, { compat, imagesPath: "images" })))
  })

})
