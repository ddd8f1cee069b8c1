/**
 * The published catalog as the base for publishing one version: it reads back into versions that render it
 * again exactly, and a version joins it in place only when that gives the catalog `update` writes.
 */
import { describe, expect, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import { Either } from "effect"
import { aliasClaimOf, buildCatalog, type HashedVersion, productOf, resolveAliasClaims } from "../../src/indexer/Catalog.js"
import { asWrittenCatalog, routeFor, versionsOfCatalog } from "../../src/publish/CatalogBase.js"
import type { Compat } from "../../src/simplestreams/Compat.js"
import { canonicalJson, type Images } from "../../src/simplestreams/Streams.js"
import type { ImageYaml } from "../../src/tree/ImageYaml.js"
import { productKey, versionDir } from "../../src/tree/Layout.js"
import type { FoundPlan } from "../../src/tree/Scanner.js"

const sha = (seed: string) => createHash("sha256").update(seed).digest("hex")

type Kind = "squashfs" | "rootxz" | "vm" | "both" | "unified" | "two-metadata"

/** A hashed version of product os:release:amd64:variant, with made-up sums of its own. */
const version = (key: string, kind: Kind = "squashfs", image?: ImageYaml): HashedVersion => {
  const [os, release, variant, name] = key.split("/") as [string, string, string, string]
  const ref = { os, release, arch: "amd64", variant, version: name }
  const info = { architecture: "x86_64", creationDate: 1, properties: { os: `${os} linux`, release_title: `${release} title` } }
  const withImage = image ? { image } : {}
  if (kind === "unified") return { ref, metadata: [], rootfs: [], unified: { name: "image.tar.gz", size: 10, sha256: sha(`${key}u`), metadata: info }, ...withImage }
  const metas = kind === "two-metadata" ? (["incus.tar.xz", "lxd.tar.xz"] as const) : (["lxd.tar.xz"] as const)
  const metadata = metas.map((m) => ({ name: m, size: 3, sha256: sha(`${key}${m}`), metadata: info }))
  const rootfs = [
    ...(kind === "vm" ? [] : [{ name: kind === "rootxz" ? "rootfs.tar.xz" : "rootfs.squashfs", ftype: kind === "rootxz" ? ("root.tar.xz" as const) : ("squashfs" as const) }]),
    ...(kind === "vm" || kind === "both" ? [{ name: "disk.qcow2", ftype: "disk-kvm.img" as const }] : [])
  ].map((r) => ({ ...r, size: 5, sha256: sha(`${key}${r.name}`), combined: Object.fromEntries(metas.map((m) => [m, sha(`${key}${m}${r.name}`)])) }))
  return { ref, metadata, rootfs, ...withImage }
}

/** The plan of a version folder as the scan gives it (what the route is decided from, before hashing). */
const planOf = (v: HashedVersion): FoundPlan => {
  const file = (name: string) => ({ name, size: 5, path: `/x/${name}`, dev: 1, ino: 1, mtimeMs: 1, ctimeMs: 1 })
  return {
    _tag: "VersionPlan",
    ref: v.ref,
    metadata: v.metadata.map((m) => ({ ...file(m.name), name: m.name })),
    rootfs: v.rootfs.map((r) => ({ ...file(r.name), ftype: r.ftype })),
    ...(v.unified ? { unified: file(v.unified.name) } : {}),
    ...(v.image ? { image: v.image } : {})
  }
}

/** What `update` writes for these versions: the catalog, each product with the aliases it keeps. */
const written = (versions: ReadonlyArray<HashedVersion>, compat: Compat): Images => {
  const { images } = buildCatalog(versions, { compat, imagesPath: "images" })
  const { kept } = resolveAliasClaims(Object.entries(images.products).map(([k, p]) => aliasClaimOf(k, p)))
  return { ...images, products: Object.fromEntries(Object.entries(images.products).map(([k, p]) => [k, { ...p, aliases: kept.get(k)! }])) }
}

/**
 * What publishing `added` in place writes: every product as written but the added version's, rendered from the
 * versions read back and the added one; the publisher renders another product again only when its aliases
 * change, which the route rules out (checked here too).
 */
const inPlace = (images: Images, added: HashedVersion, compat: Compat): Images => {
  const base = Either.getOrThrow(versionsOfCatalog(images, { compat, imagesPath: "images" }))
  const pk = productKey(added.ref)
  const mine = [...base.values()].filter((v) => productKey(v.ref) === pk && versionDir(v.ref) !== versionDir(added.ref))
  const product = productOf([...mine, added], { compat, imagesPath: "images" })
  const products = { ...images.products, [pk]: product }
  const { kept } = resolveAliasClaims(Object.entries(products).map(([k, p]) => aliasClaimOf(k, k === pk ? p : { ...productOf([...base.values()].filter((v) => productKey(v.ref) === k), { compat, imagesPath: "images" }) })))
  for (const [k, p] of Object.entries(images.products)) if (k !== pk) expect(kept.get(k), k).toBe(p.aliases)
  const sorted = Object.fromEntries(Object.entries({ ...products, [pk]: { ...product, aliases: kept.get(pk)! } }).sort(([a], [b]) => (a < b ? -1 : 1)))
  return { ...images, products: sorted }
}

const stable: ImageYaml = { aliases: ["stable"], distro_name: "Debian GNU/Linux", release_title: "12 (bookworm)", requirements: { secureboot: "false" } }
const tree = [
  version("debian/bookworm/default/20240101_10:00"),
  version("debian/bookworm/default/20240201_10:00", "both", stable),
  version("alpine/3.20/default/20240101_10:00", "rootxz", { release_aliases: { "3.20": ["edge"] } }),
  version("fedora/40/cloud/20240101_10:00", "vm", { aliases: ["shared"] }),
  version("ubuntu/noble/default/20240101_10:00", "two-metadata", { aliases: ["shared"] }),
  version("tiny/1.0/default/20240101_10:00", "unified")
]

describe.each(["both", "lxd", "incus"] as const)("the catalog as a base (compat %s)", (compat) => {
  const images = written(tree, compat)
  const route = (v: HashedVersion, over: Images = images) =>
    routeFor(over, Either.getOrThrow(versionsOfCatalog(over, { compat, imagesPath: "images" })), planOf(v), { compat, imagesPath: "images" })

  it("reads back into versions that render every product exactly as written", () => {
    const base = Either.getOrThrow(versionsOfCatalog(images, { compat, imagesPath: "images" }))
    expect([...base.keys()].sort()).toEqual(tree.map((v) => versionDir(v.ref)).sort())
    for (const [pk, product] of Object.entries(images.products)) {
      const rendered = productOf([...base.values()].filter((v) => productKey(v.ref) === pk), { compat, imagesPath: "images" })
      expect(canonicalJson(rendered), pk).toBe(canonicalJson(product))
    }
    expect(Either.getOrThrow(asWrittenCatalog(JSON.parse(canonicalJson(images))))).toEqual(images)
  })

  const inPlaceCases: ReadonlyArray<readonly [string, HashedVersion]> = [
    ["a new product", version("arch/rolling/default/20240301_10:00", "squashfs", { aliases: ["arch-latest"] })],
    ["a new unified product", version("tiny/2.0/default/20240301_10:00", "unified")],
    ["a newer version keeping the aliases, with more", version("debian/bookworm/default/20240301_10:00", "squashfs", { ...stable, aliases: ["stable", "more"] })],
    ["a version between two others (the newest still names the product)", version("debian/bookworm/default/20240115_10:00", "rootxz")],
    ["the newest version again, with another alias", version("debian/bookworm/default/20240201_10:00", "both", { ...stable, aliases: ["stable", "again"] })],
    ["a container where another product holds the alias for VMs only", version("shared/1/default/20240301_10:00", "squashfs", { aliases: ["fedora/40/cloud"] })],
    ["a version that adds VMs to a container product", version("alpine/3.20/default/20240301_10:00", "both", { release_aliases: { "3.20": ["edge"] } })]
  ]
  it.each(inPlaceCases)("adds %s in place, giving the catalog update writes", (_, v) => {
    expect(route(v)).toEqual({ _tag: "InPlace" })
    const all = [...tree.filter((t) => versionDir(t.ref) !== versionDir(v.ref)), v]
    expect(canonicalJson(inPlace(images, v, compat))).toBe(canonicalJson(written(all, compat)))
  })

  const rebuildCases: ReadonlyArray<readonly [string, HashedVersion, RegExp]> = [
    ["a version older than every other of its product", version("debian/bookworm/default/20231201_10:00"), /older than every other version/],
    ["an alias another product holds", version("arch/rolling/default/20240301_10:00", "squashfs", { aliases: ["stable"] }), /alias stable \(x86_64, container\) .* is held by debian:bookworm:amd64:default/],
    ["a folder alias another product holds (Debian beside debian)", version("Debian/bookworm/default/20240301_10:00"), /alias debian\/bookworm\/default .* held by debian:bookworm:amd64:default/],
    ["a newest version that drops an alias", version("debian/bookworm/default/20240301_10:00"), /does not claim stable/],
    ["a container version of a VM product whose alias another's containers hold", version("fedora/40/cloud/20240301_10:00", "squashfs", { aliases: ["shared"] }), /alias shared \(x86_64, container\) .* held by ubuntu:noble:amd64:default/]
  ]
  it.each(rebuildCases)("rebuilds for %s", (_, v, why) => {
    const r = route(v)
    expect(r._tag).toBe("Rebuild")
    expect(r._tag === "Rebuild" && r.reason).toMatch(why)
  })

  it("adds in place beside a product that lost its folder aliases, rendering that one the same again", () => {
    const clash = [...tree, version("Debian/bookworm/default/20240301_10:00")]
    const over = written(clash, compat)
    expect(over.products["Debian:bookworm:amd64:default"]!.aliases).toBe("")
    const v = version("arch/rolling/default/20240301_10:00")
    expect(route(v, over)).toEqual({ _tag: "InPlace" })
    expect(canonicalJson(inPlace(over, v, compat))).toBe(canonicalJson(written([...clash, v], compat)))
  })

  it("rebuilds when a product comes whose folder-made aliases an older product's image.yaml holds, and the newcomer gets them", () => {
    const evil = version("evil/1/default/20200101_10:00", "squashfs", { aliases: ["busybox/1.36", "busybox/1.36/default"] })
    const over = written([...tree, evil], compat)
    expect(over.products["evil:1:amd64:default"]!.aliases).toBe("evil/1/default,evil/1,busybox/1.36,busybox/1.36/default")
    const busybox = version("busybox/1.36/default/20240301_10:00")
    expect(route(busybox, over)).toMatchObject({ _tag: "Rebuild", reason: expect.stringMatching(/alias busybox\/1.36\/default .* held by evil:1:amd64:default/) })
    const after = written([...tree, evil, busybox], compat)
    expect(after.products["busybox:1.36:amd64:default"]!.aliases).toBe("busybox/1.36/default,busybox/1.36")
    expect(after.products["evil:1:amd64:default"]!.aliases).toBe("evil/1/default,evil/1")
    expect(route(version("evil/1/default/20200101_10:00", "squashfs", { aliases: ["busybox/1.36"] }), after)).toMatchObject({ _tag: "Rebuild" })
  })

  it("rebuilds for a catalog it cannot read back", () => {
    const moved = JSON.parse(canonicalJson(images).replaceAll('"images/debian/', '"elsewhere/debian/')) as Images
    expect(Either.isLeft(versionsOfCatalog(moved, { compat, imagesPath: "images" }))).toBe(true)
    expect(Either.isLeft(asWrittenCatalog({ products: { "a:b:amd64:c": { versions: {} } } }))).toBe(true)
    expect(Either.isLeft(asWrittenCatalog(JSON.parse(canonicalJson(images).replace(/"size": 5/, '"size": "5"'))))).toBe(true)
  })
})
