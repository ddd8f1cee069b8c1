import { NodeContext } from "@effect/platform-node"
import { describe, expect, it, layer } from "@effect/vitest"
import { Context, Effect, Either, Layer } from "effect"
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Metadata } from "../../src/tree/Metadata.js"
import { tempDir, writeBombTarball, writeMetadataTarball, writeSquashfs, writeUnifiedTarball } from "../support/Images.js"
import { haveTools } from "../support/Tools.js"
import { childrenRunning } from "../support/Children.js"

const dir = tempDir()
const read = (name: string) => Effect.flatMap(Metadata, (m) => Effect.either(m.read(join(dir, name))))
const TestLive = Metadata.Default.pipe(Layer.provideMerge(NodeContext.layer))

describe.skipIf(!haveTools("tar", "xz", "gzip", "bzip2", "zstd", "mksquashfs"))("Metadata.read on real tarballs", () => {
  layer(TestLive)((it) => {
    it.effect("reads metadata.yaml from xz, gzip, bzip2 and plain tarballs", () =>
      Effect.gen(function* () {
        for (const compression of ["xz", "gzip", "bzip2", "none"] as const) {
          writeMetadataTarball(join(dir, `m-${compression}`), undefined, { compression })
          const result = yield* read(`m-${compression}`)
          expect(result).toEqual(Either.right({ architecture: "x86_64", creationDate: 1704103200, properties: { os: "Debian", release: "bookworm", variant: "default", description: "test image" } }))
        }
      }))

    it.effect("accepts ./metadata.yaml (a tarball made with tar -C dir .)", () =>
      Effect.gen(function* () {
        writeMetadataTarball(join(dir, "dot.tar.xz"), undefined, { dotSlash: true })
        expect(Either.isRight(yield* read("dot.tar.xz"))).toBe(true)
      }))

    it.effect("finds metadata.yaml behind a long (GNU or pax) name", () =>
      Effect.gen(function* () {
        writeMetadataTarball(join(dir, "long.tar"), undefined, { compression: "none", extra: { [`templates/${"x".repeat(150)}.tpl`]: "x" } })
        expect(Either.isRight(yield* read("long.tar"))).toBe(true)
      }))

    it.effect("refuses random bytes, a truncated xz, an empty file, a tarball without metadata.yaml and a squashfs", () =>
      Effect.gen(function* () {
        writeFileSync(join(dir, "random"), randomBytes(4096))
        expect(yield* read("random")).toEqual(Either.left({ reason: "not a tarball (xz, gzip, bzip2, zstd or plain tar)" }))
        writeMetadataTarball(join(dir, "whole.tar.xz"))
        const whole = execFileSync("head", ["-c", "60", join(dir, "whole.tar.xz")])
        writeFileSync(join(dir, "cut.tar.xz"), whole)
        expect(yield* read("cut.tar.xz")).toEqual(Either.left({ reason: expect.stringMatching(/^not valid xz data \(.+\)$/) }))
        writeFileSync(join(dir, "empty"), "")
        expect(yield* read("empty")).toEqual(Either.left({ reason: "empty file" }))
        execFileSync("tar", ["-cJf", join(dir, "nometa.tar.xz"), "-C", dir, "random"])
        expect(yield* read("nometa.tar.xz")).toEqual(Either.left({ reason: "no metadata.yaml in the tarball" }))
        writeSquashfs(join(dir, "sq"))
        expect(yield* read("sq")).toEqual(Either.left({ reason: "not a tarball (xz, gzip, bzip2, zstd or plain tar)" }))
        expect(yield* read("does-not-exist")).toEqual(Either.left({ reason: expect.stringContaining("cannot read") }))
      }))

    it.effect("refuses a unified image tarball (it holds rootfs/)", () =>
      Effect.gen(function* () {
        writeMetadataTarball(join(dir, "unified.tar.gz"), undefined, { compression: "gzip", extra: { "rootfs/etc/hostname": "x" } })
        expect(yield* read("unified.tar.gz")).toEqual(Either.left({ reason: expect.stringContaining("unified image") }))
        execFileSync("tar", ["-czf", join(dir, "rootfs-first.tar.gz"), "-C", join(dir), "--transform", "s,^random$,rootfs/random,", "random"])
        expect(yield* read("rootfs-first.tar.gz")).toEqual(Either.left({ reason: expect.stringContaining("unified image") }))
      }))

    it.effect("reads a unified image (gzip, xz, zstd) up to its rootfs/, and refuses one without rootfs/, with rootfs/ first, or a VM", () =>
      Effect.gen(function* () {
        const unified = (name: string) => Effect.flatMap(Metadata, (m) => Effect.either(m.read(join(dir, name), "unified")))
        for (const compression of ["gzip", "xz", "zstd"] as const) {
          writeUnifiedTarball(join(dir, `u-${compression}.tar`), { compression })
          expect(yield* unified(`u-${compression}.tar`)).toEqual(Either.right(expect.objectContaining({ architecture: "x86_64", creationDate: 1704103200 })))
        }
        writeMetadataTarball(join(dir, "meta-only.tar.gz"), undefined, { compression: "gzip" })
        expect(yield* unified("meta-only.tar.gz")).toEqual(Either.left({ reason: "no rootfs/ in the tarball: a metadata tarball, not a unified image" }))
        writeUnifiedTarball(join(dir, "rootfs-first.tar.gz"), { members: ["rootfs", "metadata.yaml", "templates"] })
        expect(yield* unified("rootfs-first.tar.gz")).toEqual(Either.left({ reason: expect.stringContaining("rootfs/ comes before metadata.yaml") }))
        writeUnifiedTarball(join(dir, "vm.tar.gz"), { rootfs: { "rootfs.img": "QFI" } })
        expect(yield* unified("vm.tar.gz")).toEqual(Either.left({ reason: expect.stringContaining("a unified VM image") }))
        // the split rule is unchanged: a unified image is no metadata tarball
        expect(yield* read("u-gzip.tar")).toEqual(Either.left({ reason: expect.stringContaining("unified image") }))
      }))

    it.effect("refuses YAML without architecture or creation_date", () =>
      Effect.gen(function* () {
        writeMetadataTarball(join(dir, "noarch.tar.xz"), "creation_date: 5\n")
        expect(yield* read("noarch.tar.xz")).toEqual(Either.left({ reason: "metadata.yaml has no architecture" }))
        writeMetadataTarball(join(dir, "nodate.tar.xz"), "architecture: amd64\ncreation_date: 0\n")
        expect(yield* read("nodate.tar.xz")).toEqual(Either.left({ reason: expect.stringContaining("creation_date") }))
      }))
  })
})

/**
 * The bomb of the report: 4 GiB of zeros, which takes over 4 s to read whole even on a fast machine; cheap to
 * make, since it repeats 16 MiB of zeros compressed once.
 */
const bombSize = 4 * 1024 * 1024 * 1024
/** Smaller for the batch: a batch that is not stopped holds every byte of it in memory. */
const liarSize = 1024 * 1024 * 1024
const tooLarge = Either.left({ reason: "decompresses to more than 32 MiB: not a metadata tarball" })
/**
 * Reading 32 MiB of zeros takes well under a second, but a machine loaded by other test runs (load 16 on 2
 * cores) was seen taking up to 2 s; a bomb read whole takes twice this or more.
 */
const nearTheCap = 3000

/** Processes whose command line names `path`: a refused bomb must leave no decompressor behind. */
const processesReading = (path: string) =>
  readdirSync("/proc").filter((pid) => {
    try {
      return /^\d+$/.test(pid) && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(path)
    } catch {
      return false // the process ended while we looked
    }
  })

describe.skipIf(!haveTools("xz", "gzip"))("Metadata on decompression bombs", () => {
  layer(TestLive)((it) => {
    for (const compression of ["xz", "gzip", "none"] as const) {
      it.effect(`refuses a ${compression} tarball of 4 GiB of zeros ending in a valid metadata.yaml, and stops near the cap`, () =>
        Effect.gen(function* () {
          const path = join(dir, `bomb-${compression}`)
          writeBombTarball(path, bombSize, { compression })
          const started = performance.now()
          const result = yield* read(`bomb-${compression}`)
          const took = performance.now() - started
          expect(result).toEqual(tooLarge)
          expect(took).toBeLessThan(nearTheCap)
          expect(processesReading(path)).toEqual([])
        }))
    }

    it.effect("readAll refuses an xz bomb whose index claims a few KiB, and still reads the file batched with it", () =>
      Effect.gen(function* () {
        const good = join(dir, "next-to-liar.tar.xz")
        const liar = join(dir, "liar.tar.xz")
        writeMetadataTarball(good)
        writeBombTarball(liar, liarSize, { compression: "xz", lieAboutSize: true })
        const started = performance.now()
        const results = yield* Effect.flatMap(Metadata, (m) => m.readAll([good, liar]))
        const took = performance.now() - started
        expect(results.get(liar)).toEqual(tooLarge)
        expect(results.get(good)).toSatisfy(Either.isRight)
        expect(took).toBeLessThan(nearTheCap)
        expect(processesReading(liar)).toEqual([])
      }))
  })

  it.scoped("startHelpers forks the decompressing helpers at once, and reads then fork nothing", () =>
    Effect.gen(function* () {
      const before = new Set(childrenRunning("perl"))
      const metadata = yield* Layer.build(Metadata.Default.pipe(Layer.provide(NodeContext.layer))).pipe(Effect.map((c) => Context.get(c, Metadata)))
      yield* metadata.startHelpers
      const started = childrenRunning("perl").filter((p) => !before.has(p))
      expect(started).toHaveLength(2)
      writeMetadataTarball(join(dir, "after-start.tar.xz"))
      expect(Either.isRight(yield* Effect.either(metadata.read(join(dir, "after-start.tar.xz"))))).toBe(true)
      expect(childrenRunning("perl").filter((p) => !before.has(p)).sort()).toEqual(started.sort())
    }))
})

process.on("exit", () => rmSync(dir, { recursive: true, force: true }))
