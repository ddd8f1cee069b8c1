/** `add` as a user runs it: exports placed by their metadata, staged, renamed into place, published. */
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { runBinAsync } from "../support/Bin.js"
import { metadataYaml, sha256Of as sha, tempDir, writeMetadataTarball, writeQcow2, writeRootTarXz, writeSquashfs, writeUnifiedTarball } from "../support/Images.js"
import { haveTools } from "../support/Tools.js"
import { addContainer, makeWebRoot, type WebRoot } from "../support/Tree.js"
import { publishedVersions, startReader, startWatch, waitFor } from "../support/WatchProcess.js"


describe.skipIf(!haveTools("tar", "xz", "gzip", "mksquashfs"))("lxd-image-server add", () => {
  it("adds a unified export and a split one where their metadata says, prints the fingerprints, and publishes them", async () => {
    const w = makeWebRoot()
    const exports = tempDir()
    writeUnifiedTarball(join(exports, "abc.tar.gz"))
    writeMetadataTarball(join(exports, "meta-abc.tar.xz"), metadataYaml({ release: "trixie" }))
    writeSquashfs(join(exports, "abc.squashfs"), "split")
    const add = (...args: Array<string>) =>
      runBinAsync(["--log-file", join(w.root, "add.log"), "add", ...args, "--img-dir", w.images, "--streams-dir", w.streams])

    const unified = await add(join(exports, "abc.tar.gz"), "--alias", "mine")
    expect(unified.code, unified.stderr).toBe(0)
    expect(unified.stdout).toBe(`${sha(join(exports, "abc.tar.gz"))}\n`)
    const split = await add(join(exports, "meta-abc.tar.xz"), join(exports, "abc.squashfs"))
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
    const again = await add(join(exports, "abc.tar.gz"))
    expect([again.code, again.stdout]).toEqual([0, unified.stdout])
    const before = readFileSync(join(w.streams, "images.json"))
    const other = await add(join(exports, "abc.tar.gz"), "--release", "trixie")
    expect(other.code).toBe(2)
    expect(other.stderr.trim().split("\n")).toEqual([expect.stringContaining("debian/trixie/amd64/default/20240101_10:00: the version exists with other files")])
    expect(readFileSync(join(w.streams, "images.json"))).toEqual(before)
  })

  it("exits 2 with the file and the reason for input it cannot place", async () => {
    const w = makeWebRoot()
    const exports = tempDir()
    writeMetadataTarball(join(exports, "meta.tar.xz"), "architecture: x86_64\ncreation_date: 1704103200\nproperties:\n  release: x\n")
    writeSquashfs(join(exports, "root.squashfs"))
    const add = (...args: Array<string>) => runBinAsync(["--log-file", join(w.root, "add.log"), "add", ...args, "--img-dir", w.images, "--streams-dir", w.streams])
    const noOs = await add(join(exports, "meta.tar.xz"), join(exports, "root.squashfs"))
    expect([noOs.code, noOs.stderr.trim()]).toEqual([2, `lxd-image-server: ${join(exports, "meta.tar.xz")}: metadata.yaml has no properties.os: give --os`])
    const alone = await add(join(exports, "meta.tar.xz"))
    expect([alone.code, alone.stderr]).toEqual([2, expect.stringContaining("no rootfs/ in the tarball: a metadata tarball, not a unified image (alone, META must be a unified image)")])
    const swapped = await add(join(exports, "root.squashfs"), join(exports, "meta.tar.xz"))
    expect(swapped.code).toBe(2)
    expect(readdirSync(w.images)).toEqual([])
  })

  it("refuses an unknown architecture in metadata.yaml with that reason alone, and --arch that is not the metadata's, before copying", async () => {
    const w = makeWebRoot()
    const exports = tempDir()
    writeUnifiedTarball(join(exports, "sparc.tar.gz"), { yaml: metadataYaml({ architecture: "sparc" }) })
    writeUnifiedTarball(join(exports, "abc.tar.gz"))
    const add = (...args: Array<string>) => runBinAsync(["--log-file", join(w.root, "add.log"), "add", ...args, "--img-dir", w.images, "--streams-dir", w.streams])
    const sparc = await add(join(exports, "sparc.tar.gz"))
    expect([sparc.code, sparc.stderr]).toEqual([2, `lxd-image-server: ${join(exports, "sparc.tar.gz")}: metadata.yaml has an unknown architecture 'sparc'\n`])
    const arch = await add(join(exports, "abc.tar.gz"), "--arch", "arm64")
    expect([arch.code, arch.stderr]).toEqual([2, `lxd-image-server: ${join(exports, "abc.tar.gz")}: --arch arm64 is not the architecture metadata.yaml gives (x86_64)\n`])
    // an alias of the same architecture is fine
    const same = await add(join(exports, "abc.tar.gz"), "--arch", "x86_64")
    expect(same.code, same.stderr).toBe(0)
    expect(readdirSync(w.images)).toEqual(["debian"])
    expect(readdirSync(join(w.images, "debian", "bookworm"))).toEqual(["x86_64"])
  })

  it("checks its folders first: a bad --img-dir or --streams-dir exits 2 with one line, and nothing is copied", async () => {
    const w = makeWebRoot()
    const exports = tempDir()
    writeUnifiedTarball(join(exports, "abc.tar.gz"))
    const add = (images: string, streams: string) => runBinAsync(["--log-file", join(w.root, "add.log"), "add", join(exports, "abc.tar.gz"), "--img-dir", images, "--streams-dir", streams])
    const oneLine = (r: { code: number | null; stderr: string }, text: string) => {
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr.trim().split("\n")).toEqual([expect.stringContaining(text)])
    }
    oneLine(await add(w.images, join(w.root, "streams")), "must end in streams/v1")
    const outside = tempDir()
    oneLine(await add(outside, w.streams), "must be inside")
    expect(readdirSync(outside)).toEqual([])
    oneLine(await add(join(w.root, "missing"), w.streams), `images folder ${join(w.root, "missing")}: does not exist`)
    expect(existsSync(join(w.root, "missing"))).toBe(false)
    writeFileSync(join(w.root, "file"), "")
    oneLine(await add(join(w.root, "file"), w.streams), `Expected path '${join(w.root, "file")}' to be a directory`)
    expect(readdirSync(w.images)).toEqual([])
    expect(existsSync(w.streams)).toBe(false)
  })

  it("a refused add leaves nothing behind: not the folders it made, and on the rebuild route no catalog", async () => {
    const w = makeWebRoot()
    const exports = tempDir()
    writeUnifiedTarball(join(exports, "abc.tar.gz"))
    const { add } = adder(w)
    // the same image under a new product: refused in place, and the product's folders go with it
    expect((await add(join(exports, "abc.tar.gz"))).code).toBe(0)
    const twin = await add(join(exports, "abc.tar.gz"), "--release", "trixie")
    expect([twin.code, twin.stderr]).toEqual([2, expect.stringContaining("refused, and taken out again: the same image as")])
    expect(readdirSync(join(w.images, "debian"))).toEqual(["bookworm"])
    // no catalog yet (the rebuild route), a version not published yet that holds the same image: nothing is written
    rmSync(join(w.root, "streams"), { recursive: true })
    const again = await add(join(exports, "abc.tar.gz"), "--os", "other", "--image-version", "20240202_10:00")
    expect([again.code, again.stderr]).toEqual([2, expect.stringContaining("refused, and taken out again")])
    // (the writer lock's file is all there is above streams/v1)
    expect(existsSync(w.streams)).toBe(false)
    expect(readdirSync(w.images)).toEqual(["debian"])
  })

  it("removes the staging folders of adds that are gone, in the product's folder, and keeps a running one's", async () => {
    const w = makeWebRoot()
    const exports = tempDir()
    writeUnifiedTarball(join(exports, "abc.tar.gz"))
    const { add } = adder(w)
    const product = w.version("debian/bookworm/amd64/default")
    const gonePid = spawnSync("true").pid
    const gone = join(product, `.20230101_00:00.add-${gonePid}`)
    const running = join(product, `.20230101_00:00.add-${process.pid}`)
    for (const dir of [gone, running]) {
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, "image.tar.gz"), "half")
    }
    const added = await add(join(exports, "abc.tar.gz"))
    expect(added.code, added.stderr).toBe(0)
    expect(added.stderr).toContain(`removed ${gone}, the staging folder of an add that is gone (process ${gonePid})`)
    expect(readdirSync(product).sort()).toEqual([`.20230101_00:00.add-${process.pid}`, "20240101_10:00"])
  })

  it("adds a split VM image (qcow2) and a split root.tar.xz one with their ftypes and combined fingerprints", async () => {
    const w = makeWebRoot()
    const exports = tempDir()
    writeMetadataTarball(join(exports, "meta-vm.tar.xz"), metadataYaml({ release: "vm" }))
    writeQcow2(join(exports, "vm.qcow2"))
    writeMetadataTarball(join(exports, "meta-tar.tar.xz"), metadataYaml({ release: "tar" }))
    writeRootTarXz(join(exports, "root.tar.xz"))
    const { add, sameAsUpdate } = adder(w)
    const vm = await add(join(exports, "meta-vm.tar.xz"), join(exports, "vm.qcow2"))
    expect(vm.code, vm.stderr).toBe(0)
    expect(vm.stdout).toBe(`${sha(join(exports, "meta-vm.tar.xz"), join(exports, "vm.qcow2"))}\n`)
    const tar = await add(join(exports, "meta-tar.tar.xz"), join(exports, "root.tar.xz"))
    expect(tar.code, tar.stderr).toBe(0)
    expect(tar.stdout).toBe(`${sha(join(exports, "meta-tar.tar.xz"), join(exports, "root.tar.xz"))}\n`)
    expect(readdirSync(w.version("debian/vm/amd64/default/20240101_10:00")).sort()).toEqual(["SHA256SUMS", "disk.qcow2", "lxd.tar.xz"])
    expect(readdirSync(w.version("debian/tar/amd64/default/20240101_10:00")).sort()).toEqual(["SHA256SUMS", "lxd.tar.xz", "rootfs.tar.xz"])
    const products = JSON.parse(readFileSync(join(w.streams, "images.json"), "utf8")).products
    const vmItems = products["debian:vm:amd64:default"].versions["20240101_10:00"].items
    expect(vmItems["disk.qcow2"].ftype).toBe("disk-kvm.img")
    expect(vmItems["lxd.tar.xz"]["combined_disk-kvm-img_sha256"]).toBe(vm.stdout.trim())
    expect(vmItems["lxd.tar.xz"].combined_squashfs_sha256).toBeUndefined()
    const tarItems = products["debian:tar:amd64:default"].versions["20240101_10:00"].items
    expect(tarItems["rootfs.tar.xz"].ftype).toBe("root.tar.xz")
    expect([tarItems["lxd.tar.xz"].combined_rootxz_sha256, tarItems["lxd.tar.xz"].combined_sha256]).toEqual([tar.stdout.trim(), tar.stdout.trim()])
    await sameAsUpdate()
  })

  /** `add` with --verbose into a web root, and `update`'s catalog of the same tree to compare it with. */
  const adder = (w: WebRoot) => ({
    add: (...args: Array<string>) =>
      runBinAsync(["--log-file", join(w.root, "add.log"), "--config", join(w.root, "none.toml"), "add", ...args, "--img-dir", w.images, "--streams-dir", w.streams, "--state-dir", join(w.root, "state")]),
    /** images.json as add left it equals what update writes for the same tree (update runs, and must agree). */
    sameAsUpdate: async () => {
      const added = readFileSync(join(w.streams, "images.json"))
      const update = await runBinAsync(["--log-file", join(w.root, "update.log"), "--config", join(w.root, "none.toml"), "update", "--img-dir", w.images, "--streams-dir", w.streams, "--state-dir", join(w.root, "state")])
      expect(update.code, update.stderr).toBe(0)
      expect(readFileSync(join(w.streams, "images.json")).toString()).toBe(added.toString())
    }
  })

  it("publishes in place the catalog update would write, and rebuilds it where aliases change hands", async () => {
    const w = makeWebRoot()
    addContainer(w, "debian/bookworm/amd64/default/20240101_10:00", "old")
    addContainer(w, "alpine/3.20/amd64/default/20240101_10:00", "alpine")
    writeFileSync(join(w.version("alpine/3.20/amd64/default/20240101_10:00"), "image.yaml"), "aliases: [taken]\n")
    const { add, sameAsUpdate } = adder(w)
    const first = await runBinAsync(["--log-file", join(w.root, "update.log"), "update", "--img-dir", w.images, "--streams-dir", w.streams])
    expect(first.code, first.stderr).toBe(0)
    const exports = tempDir()
    writeUnifiedTarball(join(exports, "new.tar.gz"), { seed: "new", yaml: metadataYaml({ creationDate: 1706781600 }) })
    writeUnifiedTarball(join(exports, "other.tar.gz"), { seed: "other", yaml: metadataYaml({ os: "Arch", release: "rolling" }) })
    writeUnifiedTarball(join(exports, "clash.tar.gz"), { seed: "clash", yaml: metadataYaml({ os: "Fedora", release: "40" }) })

    // a newer version of a product, with an alias: its product alone is rendered again
    const newer = await add(join(exports, "new.tar.gz"), "--alias", "stable")
    expect(newer.code, newer.stderr).toBe(0)
    expect(newer.stderr).toContain("its product alone rendered again")
    await sameAsUpdate()
    // a new product
    const other = await add(join(exports, "other.tar.gz"))
    expect([other.code, other.stderr]).toEqual([0, expect.stringContaining("its product alone rendered again")])
    await sameAsUpdate()
    // an alias another product holds: the whole catalog, where the older product keeps it
    const clash = await add(join(exports, "clash.tar.gz"), "--alias", "taken")
    expect([clash.code, clash.stderr]).toEqual([0, expect.stringContaining("the whole catalog rebuilt: alias taken")])
    expect(clash.stderr).toContain("alpine:3.20:amd64:default keeps it, fedora:40:amd64:default does not get it")
    await sameAsUpdate()
    const images = JSON.parse(readFileSync(join(w.streams, "images.json"), "utf8"))
    expect(images.products["fedora:40:amd64:default"].aliases).toBe("fedora/40/default,fedora/40")
    expect(images.products["debian:bookworm:amd64:default"].aliases).toBe("debian/bookworm/default,debian/bookworm,stable")
  })

  it("adds --alias to a version already there with the same bytes, in its image.yaml, and publishes it again", async () => {
    const w = makeWebRoot()
    const exports = tempDir()
    writeUnifiedTarball(join(exports, "abc.tar.gz"))
    const { add, sameAsUpdate } = adder(w)
    const version = w.version("debian/bookworm/amd64/default/20240101_10:00")
    expect((await add(join(exports, "abc.tar.gz"), "--alias", "mine")).code).toBe(0)
    writeFileSync(join(version, "image.yaml"), "# kept\naliases: [mine] # the first\nrelease_title: Twelve\n")
    const more = await add(join(exports, "abc.tar.gz"), "--alias", "mine", "--alias", "more", "--alias", "Most")
    expect(more.code, more.stderr).toBe(0)
    expect(more.stdout).toBe(`${sha(join(exports, "abc.tar.gz"))}\n`)
    expect(more.stderr).toContain("added the alias(es) more, Most to")
    expect(readFileSync(join(version, "image.yaml"), "utf8")).toBe("# kept\naliases: [ mine, more, Most ] # the first\nrelease_title: Twelve\n")
    const product = JSON.parse(readFileSync(join(w.streams, "images.json"), "utf8")).products["debian:bookworm:amd64:default"]
    expect([product.aliases, product.release_title]).toEqual(["debian/bookworm/default,debian/bookworm,mine,more,most", "Twelve"])
    await sameAsUpdate()
    // the aliases there already: nothing to do, nothing written
    const before = readFileSync(join(w.streams, "images.json"))
    const again = await add(join(exports, "abc.tar.gz"), "--alias", "more")
    expect([again.code, again.stderr]).toEqual([0, expect.stringContaining("already holds this image, with these aliases: nothing to do")])
    expect(readFileSync(join(w.streams, "images.json"))).toEqual(before)
    // a bad alias changes nothing
    const bad = await add(join(exports, "abc.tar.gz"), "--alias", "no blanks")
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringContaining("--alias: aliases.0: an alias of")])
  })

  it("refuses the same image under another version, and takes the copy out again", async () => {
    const w = makeWebRoot()
    const exports = tempDir()
    writeUnifiedTarball(join(exports, "abc.tar.gz"))
    const { add } = adder(w)
    expect((await add(join(exports, "abc.tar.gz"))).code).toBe(0)
    const before = readFileSync(join(w.streams, "images.json"))
    const twin = await add(join(exports, "abc.tar.gz"), "--image-version", "20240202_10:00")
    expect(twin.code).toBe(2)
    expect(twin.stderr).toContain("refused, and taken out again: the same image as debian/bookworm/amd64/default/20240101_10:00")
    expect(readdirSync(w.version("debian/bookworm/amd64/default")).sort()).toEqual(["20240101_10:00"])
    expect(readFileSync(join(w.streams, "images.json"))).toEqual(before)
  })

  it("does not publish again a version prune or remove withdrew", async () => {
    const w = makeWebRoot()
    const exports = tempDir()
    writeUnifiedTarball(join(exports, "abc.tar.gz"))
    writeUnifiedTarball(join(exports, "new.tar.gz"), { seed: "new", yaml: metadataYaml({ creationDate: 1706781600 }) })
    const { add } = adder(w)
    expect((await add(join(exports, "abc.tar.gz"))).code).toBe(0)
    const removed = await runBinAsync(["--log-file", join(w.root, "remove.log"), "remove", "--img-dir", w.images, "--streams-dir", w.streams, "--state-dir", join(w.root, "state"), "--grace", "1", "debian:bookworm:amd64:default@20240101_10:00"])
    expect(removed.code, removed.stderr).toBe(0)
    const again = await add(join(exports, "abc.tar.gz"))
    expect([again.code, again.stderr]).toEqual([2, expect.stringContaining("not published: it was withdrawn (by prune or remove)")])
    // nor does an add of another version bring it back
    expect((await add(join(exports, "new.tar.gz"))).code).toBe(0)
    expect(publishedVersions(w)).toEqual(["debian/bookworm/amd64/default/20240201_10:00"])
  })

  it("beside a running watch: the version stays listed while the service reconciles, which ends with the catalog add wrote", async () => {
    const w = makeWebRoot()
    addContainer(w, "debian/bookworm/amd64/default/20240101_10:00", "old")
    const watch = startWatch(w, { settle: "3" })
    try {
      await waitFor("watch's first catalog", () => publishedVersions(w).length === 1)
      const exports = tempDir()
      writeUnifiedTarball(join(exports, "new.tar.gz"), { seed: "new", yaml: metadataYaml({ creationDate: 1706781600 }) })
      // exported a while ago: the copy is as old, so the service need not wait for it to settle
      const before = new Date(Date.now() - 60_000)
      utimesSync(join(exports, "new.tar.gz"), before, before)
      const added = await runBinAsync(["--log-file", join(w.root, "add.log"), "add", join(exports, "new.tar.gz"), "--img-dir", w.images, "--streams-dir", w.streams, "--state-dir", join(w.root, "state")])
      expect(added.code, added.stderr).toBe(0)
      expect(added.stderr).toContain("its product alone rendered again")
      const written = readFileSync(join(w.streams, "images.json"), "utf8")
      const reader = startReader(w, (c) => (c.images.products["debian:bookworm:amd64:default"]?.versions["20240201_10:00"] ? [] : ["the added version is not listed"]))
      const reconciledAfterAdd = () => {
        const log = watch.log()
        const seen = log.indexOf("the catalog was written by another process: reconciling")
        return seen >= 0 && log.indexOf("reconciled", seen) >= 0
      }
      await waitFor("watch to reconcile after add", reconciledAfterAdd, 60_000)
      // and for what it would publish of the folder once it has settled
      await new Promise((r) => setTimeout(r, 4000))
      const { reads, problems } = await reader.stop()
      expect(reads).toBeGreaterThan(0)
      expect(problems).toEqual([])
      expect([...publishedVersions(w)].sort()).toEqual(["debian/bookworm/amd64/default/20240101_10:00", "debian/bookworm/amd64/default/20240201_10:00"])
      expect(readFileSync(join(w.streams, "images.json"), "utf8")).toBe(written)
    } finally {
      await watch.stop()
    }
  }, 90_000)
})
