import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { createHash } from "node:crypto"
import { appendFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { IndexerLive } from "../../src/Layers.js"
import { Indexer } from "../../src/indexer/Indexer.js"
import { Images, Index } from "../../src/simplestreams/Streams.js"
import { tempDir, writeMetadataTarball, writeQcow2, writeSquashfs, writeUnifiedTarball } from "../support/Images.js"
import { captureLogs } from "../support/Logs.js"
import { haveTools } from "../support/Tools.js"
import { addContainer, buildMixedTree, makeWebRoot, writeSha256Sums } from "../support/Tree.js"

const sha = (path: string, ...more: Array<string>) => {
  const h = createHash("sha256")
  for (const p of [path, ...more]) h.update(readFileSync(p))
  return h.digest("hex")
}
const readJson = (path: string) => JSON.parse(readFileSync(path, "utf8"))

describe.skipIf(!haveTools("tar", "xz", "zstd", "mksquashfs"))("Indexer.rebuild on a real tree", () => {
  layer(IndexerLive.pipe(Layer.provideMerge(NodeContext.layer)))((it) => {
    it.effect("publishes whole images only, with exact hashes, and refuses the junk with a reason", () =>
      Effect.gen(function* () {
        const w = makeWebRoot()
        buildMixedTree(w)
        const outside = tempDir()
        addContainer({ ...w, version: (rel) => join(outside, rel) }, "v/20240101_10:00", "outside")
        mkdirSync(w.version("ubuntu/noble/amd64/default"), { recursive: true })
        symlinkSync(join(outside, "v", "20240101_10:00"), w.version("ubuntu/noble/amd64/default/20240101_10:00"))
        const logs = captureLogs()
        const summary = yield* Effect.flatMap(Indexer, (i) => i.rebuild({ imagesDir: w.images, streamsDir: w.streams, compat: "both" })).pipe(Effect.provide(logs.layer))
        expect(summary).toMatchObject({ products: 3, versions: 4 })

        const images = Schema.decodeUnknownSync(Images)(readJson(join(w.streams, "images.json")))
        const index = Schema.decodeUnknownSync(Index)(readJson(join(w.streams, "index.json")))
        expect(index.index.images?.products).toEqual(["alpine:3.20:arm64:default", "debian:bookworm:amd64:default", "fedora:40:amd64:cloud"])
        expect(Object.keys(images.products["debian:bookworm:amd64:default"]!.versions)).toEqual(["20240101_10:00", "20240102_10:00"])

        const v = w.version("debian/bookworm/amd64/default/20240102_10:00")
        const items = images.products["debian:bookworm:amd64:default"]!.versions["20240102_10:00"]!.items
        expect(Object.keys(items)).toEqual(["disk.qcow2", "incus.tar.xz", "lxd.tar.xz", "rootfs.squashfs"])
        expect(items["lxd.tar.xz"]).toEqual({
          ftype: "lxd.tar.xz",
          path: "images/debian/bookworm/amd64/default/20240102_10:00/lxd.tar.xz",
          size: statSync(join(v, "lxd.tar.xz")).size,
          sha256: sha(join(v, "lxd.tar.xz")),
          combined_squashfs_sha256: sha(join(v, "lxd.tar.xz"), join(v, "rootfs.squashfs")),
          "combined_disk-kvm-img_sha256": sha(join(v, "lxd.tar.xz"), join(v, "disk.qcow2"))
        })
        expect(items["incus.tar.xz"]).toEqual({ ...items["lxd.tar.xz"], ftype: "incus.tar.xz" })
        expect(items["rootfs.squashfs"]).toEqual({ ftype: "squashfs", path: "images/debian/bookworm/amd64/default/20240102_10:00/rootfs.squashfs", size: statSync(join(v, "rootfs.squashfs")).size, sha256: sha(join(v, "rootfs.squashfs")) })
        const a = w.version("alpine/3.20/arm64/default/20240103_10:00")
        const alpine = images.products["alpine:3.20:arm64:default"]!.versions["20240103_10:00"]!.items["lxd.tar.xz"]!
        expect(alpine.path).toBe("images/alpine/3.20/arm64/default/20240103_10:00/incus.tar.xz")
        expect(alpine.combined_rootxz_sha256).toBe(sha(join(a, "incus.tar.xz"), join(a, "rootfs.tar.xz")))
        expect(alpine.combined_sha256).toBe(alpine.combined_rootxz_sha256)

        const warnings = logs.lines.filter((l) => l.startsWith("WARN"))
        const expectWarning = (path: string, reason: string) =>
          expect(warnings.some((l) => l.includes(join(w.images, path)) && l.includes(reason)), `${path}: ${reason}\n${warnings.join("\n")}`).toBe(true)
        expectWarning("debian/bookworm/amd64/default/20240106_10:00", "no rootfs file")
        expectWarning("debian/bookworm/amd64/default/20240107_10:00", "no metadata file")
        expectWarning("debian/bookworm/sparc/default/20240101_10:00", "unknown architecture folder 'sparc'")
        expectWarning("debian/bookworm/amd64/default/20240108_10:00/lxd.tar.xz", "not a tarball")
        expectWarning("ubuntu/noble/amd64/default/20240101_10:00", "symlink leading outside the images folder")
        expect(warnings).toHaveLength(5)
        const all = readFileSync(join(w.streams, "images.json"), "utf8")
        for (const junk of [".2024010", "Ab12Cd", "SHA256SUMS", "latest", "20241350", "20240106", "20240107", "20240108", "sparc", "ubuntu"]) expect(all).not.toContain(junk)
      }))

    it.effect("writes 0644 files atomically, leaves no temp file, and gives the same bytes for the same tree", () =>
      Effect.gen(function* () {
        const w = makeWebRoot()
        addContainer(w, "debian/bookworm/amd64/default/20240101_10:00", "a")
        const indexer = yield* Indexer
        yield* indexer.rebuild({ imagesDir: w.images, streamsDir: w.streams, compat: "both" })
        const first = [readFileSync(join(w.streams, "images.json")), readFileSync(join(w.streams, "index.json"))]
        yield* indexer.rebuild({ imagesDir: w.images, streamsDir: w.streams, compat: "both" })
        expect([readFileSync(join(w.streams, "images.json")), readFileSync(join(w.streams, "index.json"))]).toEqual(first)
        expect(readdirSync(w.streams).sort()).toEqual(["images.json", "index.json"])
        for (const f of ["images.json", "index.json"]) expect(statSync(join(w.streams, f)).mode & 0o777).toBe(0o644)
      }))

    it.effect("refuses a version folder that is a symlink, even one that stays inside the images folder", () =>
      Effect.gen(function* () {
        const w = makeWebRoot()
        addContainer(w, "debian/bookworm/amd64/default/20240101_10:00", "a")
        mkdirSync(w.version("debian/bookworm/amd64/cloud"), { recursive: true })
        symlinkSync(w.version("debian/bookworm/amd64/default/20240101_10:00"), w.version("debian/bookworm/amd64/cloud/20240101_10:00"))
        const logs = captureLogs()
        const summary = yield* Effect.flatMap(Indexer, (i) => i.rebuild({ imagesDir: w.images, streamsDir: w.streams, compat: "lxd" })).pipe(Effect.provide(logs.layer))
        // the watcher does not follow symlinks: what it leads to would go stale in the service
        expect(summary).toMatchObject({ products: 1, versions: 1, refused: 1 })
        expect(logs.lines.some((l) => l.includes("debian/bookworm/amd64/cloud/20240101_10:00: a symlink to a folder"))).toBe(true)
      }))

    it.effect("refuses a metadata.yaml whose architecture contradicts the folder", () =>
      Effect.gen(function* () {
        const w = makeWebRoot()
        addContainer(w, "debian/bookworm/arm64/default/20240101_10:00", "a", { architecture: "x86_64" })
        const logs = captureLogs()
        const summary = yield* Effect.flatMap(Indexer, (i) => i.rebuild({ imagesDir: w.images, streamsDir: w.streams, compat: "both" })).pipe(Effect.provide(logs.layer))
        expect(summary).toMatchObject({ products: 0, refused: 1 })
        expect(logs.lines.find((l) => l.startsWith("WARN"))).toContain("metadata.yaml says architecture x86_64, but the folder says arm64")
        expect(readJson(join(w.streams, "index.json"))).toEqual({ format: "index:1.0", index: {} })
      }))

    it.effect("publishes a version only when its files match its SHA256SUMS, small or large, and names the file or line at fault", () =>
      Effect.gen(function* () {
        const w = makeWebRoot()
        const rel = (v: string) => `debian/bookworm/amd64/default/${v}`
        const good = addContainer(w, rel("20240101_10:00"), "good")
        writeSha256Sums(good)
        // over the inline limit: hashed on the worker pool, not on this thread
        const large = addContainer(w, rel("20240102_10:00"), "large")
        writeQcow2(join(large, "disk.qcow2"), "x", 512 * 1024)
        writeSha256Sums(large)
        const wrong = addContainer(w, rel("20240103_10:00"), "wrong")
        writeSha256Sums(wrong)
        writeSquashfs(join(wrong, "rootfs.squashfs"), "other bytes")
        const wrongLarge = addContainer(w, rel("20240104_10:00"), "wrong-large")
        writeQcow2(join(wrongLarge, "disk.qcow2"), "y", 512 * 1024)
        writeSha256Sums(wrongLarge)
        writeQcow2(join(wrongLarge, "disk.qcow2"), "z", 512 * 1024)
        const badLine = addContainer(w, rel("20240105_10:00"), "bad-line")
        writeSha256Sums(badLine)
        appendFileSync(join(badLine, "SHA256SUMS"), "md5 rootfs.squashfs\n")
        const unlisted = addContainer(w, rel("20240106_10:00"), "unlisted")
        writeSha256Sums(unlisted, ["lxd.tar.xz"])
        const coming = addContainer(w, rel("20240107_10:00"), "coming")
        writeQcow2(join(coming, "disk.qcow2"), "vm")
        writeSha256Sums(coming)
        rmSync(join(coming, "disk.qcow2"))
        const logs = captureLogs()
        const summary = yield* Effect.flatMap(Indexer, (i) => i.rebuild({ imagesDir: w.images, streamsDir: w.streams, compat: "both" })).pipe(Effect.provide(logs.layer))
        expect(summary).toMatchObject({ versions: 2, refused: 5 })
        const images = readJson(join(w.streams, "images.json"))
        expect(Object.keys(images.products["debian:bookworm:amd64:default"].versions)).toEqual(["20240101_10:00", "20240102_10:00"])
        const warnings = logs.lines.filter((l) => l.startsWith("WARN"))
        const expectWarning = (path: string, reason: string) =>
          expect(warnings.some((l) => l.includes(`${join(w.images, path)}: ${reason}`)), `${path}: ${reason}\n${warnings.join("\n")}`).toBe(true)
        expectWarning(`${rel("20240103_10:00")}/rootfs.squashfs`, "sha256 ")
        expectWarning(`${rel("20240104_10:00")}/disk.qcow2`, "sha256 ")
        expectWarning(`${rel("20240105_10:00")}/SHA256SUMS`, "line 3 is not '<64 hex digits>  <file name>'")
        expectWarning(`${rel("20240106_10:00")}/rootfs.squashfs`, "not listed in SHA256SUMS")
        expectWarning(`${rel("20240107_10:00")}/disk.qcow2`, "listed in SHA256SUMS but not in the folder")
        expect(warnings).toHaveLength(5)
      }))

    it.effect("takes names and requirements from image.yaml, refuses a bad one with the reason, and gives a clashing alias to the first product", () =>
      Effect.gen(function* () {
        const w = makeWebRoot()
        const debian = addContainer(w, "debian/bookworm/amd64/default/20240101_10:00", "debian")
        writeFileSync(join(debian, "image.yaml"), "aliases: [stable]\nrelease_aliases:\n  bookworm: 12\ndistro_name: Debian GNU/Linux\nrequirements:\n  secureboot: false\n")
        const ubuntu = addContainer(w, "ubuntu/noble/amd64/default/20240201_10:00", "ubuntu")
        writeFileSync(join(ubuntu, "image.yaml"), "aliases: [stable, lts]\n")
        const bad = addContainer(w, "alpine/3.20/amd64/default/20240101_10:00", "alpine")
        writeFileSync(join(bad, "image.yaml"), "requirements: [secureboot]\n")
        const logs = captureLogs()
        const summary = yield* Effect.flatMap(Indexer, (i) => i.rebuild({ imagesDir: w.images, streamsDir: w.streams, compat: "both" })).pipe(Effect.provide(logs.layer))
        expect(summary).toMatchObject({ products: 2, refused: 1 })
        const images = Schema.decodeUnknownSync(Images)(readJson(join(w.streams, "images.json")))
        expect(images.products["debian:bookworm:amd64:default"]).toMatchObject({
          aliases: "debian/bookworm/default,debian/bookworm,debian/12/default,debian/12,stable",
          os: "Debian GNU/Linux",
          requirements: { secureboot: "false" },
          lxd_requirements: { secureboot: "false" }
        })
        expect(images.products["ubuntu:noble:amd64:default"]!.aliases).toBe("ubuntu/noble/default,ubuntu/noble,lts")
        const warnings = logs.lines.filter((l) => l.startsWith("WARN"))
        expect(warnings.some((l) => l.includes(`${join(bad, "image.yaml")}: requirements: `))).toBe(true)
        expect(warnings.some((l) => l.includes("alias stable (x86_64) is claimed by debian:bookworm:amd64:default and ubuntu:noble:amd64:default"))).toBe(true)
        expect(warnings).toHaveLength(2)
      }))

    it.effect("keeps a product's folder-made aliases from a backdated upload whose image.yaml names them", () =>
      Effect.gen(function* () {
        const w = makeWebRoot()
        addContainer(w, "busybox/1.36/amd64/default/20240101_10:00", "busybox")
        const evil = addContainer(w, "evil/1/amd64/default/20200101_10:00", "evil")
        writeFileSync(join(evil, "image.yaml"), 'aliases: [busybox/1.36, "busybox/1.36/default", mine]\n')
        const logs = captureLogs()
        yield* Effect.flatMap(Indexer, (i) => i.rebuild({ imagesDir: w.images, streamsDir: w.streams, compat: "both" })).pipe(Effect.provide(logs.layer))
        const images = Schema.decodeUnknownSync(Images)(readJson(join(w.streams, "images.json")))
        expect(images.products["busybox:1.36:amd64:default"]!.aliases).toBe("busybox/1.36/default,busybox/1.36")
        expect(images.products["evil:1:amd64:default"]!.aliases).toBe("evil/1/default,evil/1,mine")
        const warnings = logs.lines.filter((l) => l.startsWith("WARN"))
        for (const alias of ["busybox/1.36", "busybox/1.36/default"]) {
          expect(warnings.some((l) => l.includes(`alias ${alias} (x86_64) is claimed by busybox:1.36:amd64:default and evil:1:amd64:default: busybox:1.36:amd64:default keeps it`)), warnings.join("\n")).toBe(true)
        }
      }))

    it.effect("publishes a unified image as lxd_combined.tar.gz and incus_combined.tar.gz items, its sha256 the fingerprint", () =>
      Effect.gen(function* () {
        const w = makeWebRoot()
        const v = w.version("debian/bookworm/amd64/default/20240101_10:00")
        writeUnifiedTarball(join(v, "image.tar.gz"), { seed: "u1" })
        writeSha256Sums(v)
        const z = w.version("debian/bookworm/amd64/default/20240102_10:00")
        writeUnifiedTarball(join(z, "image.tar.zst"), { compression: "zstd", seed: "u2" })
        const noRootfs = w.version("debian/bookworm/amd64/default/20240103_10:00")
        writeMetadataTarball(join(noRootfs, "export.tar.gz"), undefined, { compression: "gzip" })
        const logs = captureLogs()
        const summary = yield* Effect.flatMap(Indexer, (i) => i.rebuild({ imagesDir: w.images, streamsDir: w.streams, compat: "both" })).pipe(Effect.provide(logs.layer))
        expect(summary).toMatchObject({ versions: 2, refused: 1 })
        const images = Schema.decodeUnknownSync(Images)(readJson(join(w.streams, "images.json")))
        const product = images.products["debian:bookworm:amd64:default"]!
        const file = join(v, "image.tar.gz")
        const item = { path: "images/debian/bookworm/amd64/default/20240101_10:00/image.tar.gz", sha256: sha(file), size: statSync(file).size }
        expect(product.versions["20240101_10:00"]!.items).toEqual({
          "incus_combined.tar.gz": { ftype: "incus_combined.tar.gz", ...item },
          "lxd_combined.tar.gz": { ftype: "lxd_combined.tar.gz", ...item }
        })
        expect(product.versions["20240102_10:00"]!.items["lxd_combined.tar.gz"]!.sha256).toBe(sha(join(z, "image.tar.zst")))
        expect(product.os).toBe("Debian")
        expect(logs.lines.find((l) => l.startsWith("WARN"))).toContain(`${join(noRootfs, "export.tar.gz")}: no rootfs/ in the tarball`)
        const lxdOnly = yield* Effect.flatMap(Indexer, (i) => i.rebuild({ imagesDir: w.images, streamsDir: w.streams, compat: "lxd" })).pipe(Effect.provide(captureLogs().layer))
        expect(lxdOnly).toMatchObject({ versions: 2 })
        expect(Object.keys(readJson(join(w.streams, "images.json")).products["debian:bookworm:amd64:default"].versions["20240101_10:00"].items)).toEqual(["lxd_combined.tar.gz"])
      }))

    it.effect("fails with a clear error for folders clients cannot use", () =>
      Effect.gen(function* () {
        const w = makeWebRoot()
        const indexer = yield* Indexer
        const missing = yield* Effect.flip(indexer.rebuild({ imagesDir: join(w.root, "nope"), streamsDir: w.streams, compat: "both" }))
        expect(missing.message).toBe(`images folder ${join(w.root, "nope")}: does not exist`)
        const badStreams = yield* Effect.flip(indexer.rebuild({ imagesDir: w.images, streamsDir: join(w.root, "out"), compat: "both" }))
        expect(badStreams.message).toContain("must end in streams/v1")
        const elsewhere = tempDir()
        writeFileSync(join(elsewhere, "x"), "")
        const outside = yield* Effect.flip(indexer.rebuild({ imagesDir: elsewhere, streamsDir: w.streams, compat: "both" }))
        expect(outside.message).toContain("must be inside")
      }))
  })
})
