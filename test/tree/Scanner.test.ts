/**
 * The scanner on a real tree: an image file name that is not a regular file (a FIFO, a folder, a symlink loop,
 * a dangling symlink) refuses its version with what it is, not as a missing file; so does an image file no one
 * may read (mode 000), which a service running as root could read but a web server could never serve.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { execFileSync } from "node:child_process"
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Scanner } from "../../src/tree/Scanner.js"
import { tempDir } from "../support/Images.js"

describe("Scanner", () => {
  layer(Scanner.Default.pipe(Layer.provideMerge(NodeContext.layer)))((it) => {
    it.effect("refuses an image file name that is not a regular file, saying what it is", () =>
      Effect.gen(function* () {
        const images = tempDir("lis-scanner-")
        const version = (variant: string, make: (rootfs: string) => void) => {
          const dir = join(images, "debian", "bookworm", "amd64", variant, "20240101_10:00")
          mkdirSync(dir, { recursive: true })
          writeFileSync(join(dir, "lxd.tar.xz"), "metadata")
          make(join(dir, "rootfs.squashfs"))
        }
        version("fifo", (f) => execFileSync("mkfifo", [f]))
        version("folder", (f) => mkdirSync(f))
        version("loop", (f) => symlinkSync(f, f))
        version("dangling", (f) => symlinkSync(join(f, "..", "gone.squashfs"), f))
        version("unreadable", (f) => {
          writeFileSync(f, "rootfs")
          chmodSync(f, 0o000)
        })
        version("owner-only", (f) => {
          writeFileSync(f, "rootfs")
          chmodSync(f, 0o400)
        })
        version("good", (f) => writeFileSync(f, "rootfs"))
        const result = yield* Effect.flatMap(Scanner, (s) => s.scan(images))
        expect(result.plans.map((p) => p.ref.variant)).toEqual(["good", "owner-only"])
        const at = (variant: string) => `debian/bookworm/amd64/${variant}/20240101_10:00/rootfs.squashfs`
        expect(result.refusals.map((r) => [r.path, r.reason])).toEqual([
          [at("dangling"), "rootfs.squashfs is not a regular file (a dangling symlink)"],
          [at("fifo"), "rootfs.squashfs is not a regular file (a fifo)"],
          [at("folder"), "rootfs.squashfs is not a regular file (a folder)"],
          [at("loop"), "rootfs.squashfs is not a regular file (a symlink loop)"],
          [at("unreadable"), "rootfs.squashfs may be read by no one (mode 000): no web server could serve it; chmod a+r it"]
        ])
        // the same from a look at the one folder, as the service does on a file event
        const one = yield* Effect.flatMap(Scanner, (s) => s.scanVersion(images, "debian/bookworm/amd64/fifo/20240101_10:00"))
        expect(one).toMatchObject({ _tag: "Refused", refusal: { path: at("fifo"), reason: "rootfs.squashfs is not a regular file (a fifo)" } })
      })
    )

    it.effect("refuses a version whose SHA256SUMS or image.yaml is no regular file, or leads outside: its checks are not to be skipped", () =>
      Effect.gen(function* () {
        const images = tempDir("lis-scanner-")
        const outside = join(tempDir("lis-outside-"), "file")
        writeFileSync(outside, "0000000000000000000000000000000000000000000000000000000000000000  rootfs.squashfs\n")
        const version = (variant: string, name: string, make: (file: string) => void) => {
          const dir = join(images, "debian", "bookworm", "amd64", variant, "20240101_10:00")
          mkdirSync(dir, { recursive: true })
          writeFileSync(join(dir, "lxd.tar.xz"), "metadata")
          writeFileSync(join(dir, "rootfs.squashfs"), "rootfs")
          make(join(dir, name))
        }
        version("sums-fifo", "SHA256SUMS", (f) => execFileSync("mkfifo", [f]))
        version("sums-folder", "SHA256SUMS", (f) => mkdirSync(f))
        version("sums-outside", "SHA256SUMS", (f) => symlinkSync(outside, f))
        version("sums-zero", "SHA256SUMS", (f) => symlinkSync("/dev/zero", f))
        version("yaml-fifo", "image.yaml", (f) => execFileSync("mkfifo", [f]))
        version("yaml-dangling", "image.yaml", (f) => symlinkSync(join(f, "..", "gone"), f))
        version("good", "notes.txt", (f) => writeFileSync(f, "a stray file is no check"))
        const result = yield* Effect.flatMap(Scanner, (s) => s.scan(images))
        expect(result.plans.map((p) => p.ref.variant)).toEqual(["good"])
        const at = (variant: string, name: string) => `debian/bookworm/amd64/${variant}/20240101_10:00/${name}`
        expect(result.refusals.map((r) => [r.path, r.reason])).toEqual([
          [at("sums-fifo", "SHA256SUMS"), "SHA256SUMS is not a regular file (a fifo)"],
          [at("sums-folder", "SHA256SUMS"), "SHA256SUMS is not a regular file (a folder)"],
          [at("sums-outside", "SHA256SUMS"), `symlink leading outside the images folder (to ${outside})`],
          [at("sums-zero", "SHA256SUMS"), "symlink leading outside the images folder (to /dev/zero)"],
          [at("yaml-dangling", "image.yaml"), "image.yaml is not a regular file (a dangling symlink)"],
          [at("yaml-fifo", "image.yaml"), "image.yaml is not a regular file (a fifo)"]
        ])
      })
    )
  })
})
