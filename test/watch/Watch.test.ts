/**
 * The service as it runs: a real `watch` process with real chokidar over temporary trees of real images,
 * while uploads arrive the ways people make them (slow in-place writes, rsync, cp, mv, a staging rename),
 * files and versions leave, garbage lands, `update` runs beside it, and it is stopped or killed.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import { appendFileSync, closeSync, cpSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, writeSync } from "node:fs"
import { join } from "node:path"
import { runBin } from "../support/Bin.js"
import { metadataYaml, squashfsHead, tempDir, writeMetadataTarball, writeSquashfs } from "../support/Images.js"
import { haveTools } from "../support/Tools.js"
import { addContainer, makeWebRoot, type WebRoot, writeSha256Sums } from "../support/Tree.js"
import { publishedVersions, readCatalog, sleep, startReader, startWatch, waitFor, type WatchProcess, type WatchStart } from "../support/WatchProcess.js"

const sha = (...files: Array<string>) => {
  const h = createHash("sha256")
  for (const f of files) h.update(readFileSync(f))
  return h.digest("hex")
}

const running: Array<WatchProcess> = []
const watchOn = (w: WebRoot, options: WatchStart = {}) => {
  const p = startWatch(w, options)
  running.push(p)
  return p
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop("SIGKILL")))
})

const key = "debian/bookworm/amd64/default"
const published = (w: WebRoot, v: string) => publishedVersions(w).includes(`${key}/${v}`)
const countOf = (text: string, needle: string) => text.split(needle).length - 1

/**
 * A tree of one version and a service that published it, its generation in the journal too: "published" is
 * logged once it is there (a stop before that left no generation, and the restart nothing to take the text from).
 */
const publishedOne = async (seed: string) => {
  const w = makeWebRoot()
  addContainer(w, `${key}/20240101_10:00`, seed)
  const first = watchOn(w)
  await waitFor("the first catalog", () => published(w, "20240101_10:00") && first.log().includes("INFO  published"))
  return { w, first }
}

describe.skipIf(!haveTools("tar", "xz", "mksquashfs", "rsync"))("watch", () => {
  it("publishes the tree at start, then a new version once, removes what leaves, and readers never see a torn file", async () => {
    const w = makeWebRoot()
    addContainer(w, `${key}/20240101_10:00`, "a")
    const watch = watchOn(w)
    const reader = startReader(w)
    await waitFor("the first catalog", () => published(w, "20240101_10:00"))

    // cp of a whole version made elsewhere
    const outside = tempDir()
    addContainer({ ...w, version: (rel) => join(outside, rel) }, "v", "b")
    cpSync(join(outside, "v"), w.version(`${key}/20240102_10:00`), { recursive: true })
    await waitFor("the copied version", () => published(w, "20240102_10:00"))
    // mv of a whole version
    addContainer({ ...w, version: (rel) => join(outside, rel) }, "m", "c")
    renameSync(join(outside, "m"), w.version(`${key}/20240103_10:00`))
    await waitFor("the moved version", () => published(w, "20240103_10:00"))

    // removing the rootfs, then a whole version, then the whole product
    rmSync(join(w.version(`${key}/20240103_10:00`), "rootfs.squashfs"))
    await waitFor("the version without rootfs to leave", () => !published(w, "20240103_10:00"))
    rmSync(w.version(`${key}/20240102_10:00`), { recursive: true })
    await waitFor("the removed version to leave", () => !published(w, "20240102_10:00"))
    rmSync(w.version("debian"), { recursive: true })
    // a product leaving is taken out of index.json before images.json drops it
    await waitFor("the empty product to leave", () => Object.keys(readCatalog(w)!.images.products).length === 0)
    expect(readCatalog(w)!.index).toEqual({ format: "index:1.0", index: {} })

    const { reads, problems } = await reader.stop()
    expect(problems).toEqual([])
    expect(reads).toBeGreaterThan(100)
    for (const v of ["20240102_10:00", "20240103_10:00"]) expect(countOf(watch.log(), `INFO  published ${key}/${v}`)).toBe(1)
    expect(watch.log()).toMatch(/INFO {2}removed debian\/bookworm\/amd64\/default\/20240102_10:00 from the catalog/)
  }, 60_000)

  it("never publishes a rootfs being written slowly in place, then publishes its final hashes", async () => {
    const w = makeWebRoot()
    const v = w.version(`${key}/20240101_10:00`)
    mkdirSync(v, { recursive: true })
    writeMetadataTarball(join(v, "lxd.tar.xz"))
    const watch = watchOn(w, { settle: "1" })
    await waitFor("the watcher", () => watch.log().includes("watching"))
    const rootfs = join(v, "rootfs.squashfs")
    const fd = openSync(rootfs, "w")
    for (let i = 0; i < 12; i++) {
      writeSync(fd, i === 0 ? Buffer.concat([squashfsHead(12 * 64 * 1024), Buffer.alloc(64 * 1024 - 96)]) : Buffer.alloc(64 * 1024, i))
      await sleep(250) // a pause shorter than the settle window
      expect(published(w, "20240101_10:00")).toBe(false)
    }
    closeSync(fd)
    await waitFor("the finished version", () => published(w, "20240101_10:00"))
    const items = readCatalog(w)!.images.products["debian:bookworm:amd64:default"]!.versions["20240101_10:00"]!.items
    expect(items["rootfs.squashfs"]).toMatchObject({ sha256: sha(rootfs), size: 12 * 64 * 1024 })
    expect(items["lxd.tar.xz"]!["combined_squashfs_sha256"]).toBe(sha(join(v, "lxd.tar.xz"), rootfs))
  }, 60_000)

  it("with SHA256SUMS sent first, never publishes a rootfs whose upload stalls past the settle time, then publishes it whole", async () => {
    const w = makeWebRoot()
    const v = w.version(`${key}/20240101_10:00`)
    const finished = tempDir()
    writeMetadataTarball(join(finished, "lxd.tar.xz"))
    writeSquashfs(join(finished, "rootfs.squashfs"), "stalled")
    writeSha256Sums(finished)
    const bytes = readFileSync(join(finished, "rootfs.squashfs"))
    const watch = watchOn(w, { settle: "0.5" })
    await waitFor("the watcher", () => watch.log().includes("watching"))
    mkdirSync(v, { recursive: true })
    cpSync(join(finished, "SHA256SUMS"), join(v, "SHA256SUMS"))
    cpSync(join(finished, "lxd.tar.xz"), join(v, "lxd.tar.xz"))
    const rootfs = join(v, "rootfs.squashfs")
    writeFileSync(rootfs, bytes.subarray(0, bytes.length - 100))
    // the writer stalls for several settle windows: the half file is hashed, and refused
    await waitFor("the refusal of the half file", () => watch.log().includes(`${rootfs}: sha256 `))
    await sleep(1500)
    expect(published(w, "20240101_10:00")).toBe(false)
    appendFileSync(rootfs, bytes.subarray(bytes.length - 100))
    await waitFor("the finished version", () => published(w, "20240101_10:00"))
    expect(readCatalog(w)!.images.products["debian:bookworm:amd64:default"]!.versions["20240101_10:00"]!.items["rootfs.squashfs"]).toMatchObject({ sha256: sha(rootfs) })
  }, 60_000)

  it("republishes the names of an edited image.yaml, and withdraws the version while the file is bad", async () => {
    const w = makeWebRoot()
    const v = addContainer(w, `${key}/20240101_10:00`, "a")
    writeFileSync(join(v, "image.yaml"), "aliases: [stable]\n")
    const watch = watchOn(w, { settle: "0.3" })
    const aliases = () => readCatalog(w)?.images.products["debian:bookworm:amd64:default"]?.["aliases" as never] as string | undefined
    await waitFor("the first catalog", () => aliases() === "debian/bookworm/default,debian/bookworm,stable")
    writeFileSync(join(v, "image.yaml"), "aliases: [stable, testing]\n")
    await waitFor("the new alias", () => aliases() === "debian/bookworm/default,debian/bookworm,stable,testing")
    writeFileSync(join(v, "image.yaml"), "aliases: stable\n")
    await waitFor("the refusal", () => watch.log().includes(`${join(v, "image.yaml")}: aliases: `) && !published(w, "20240101_10:00"))
    rmSync(join(v, "image.yaml"))
    await waitFor("the version without the file", () => aliases() === "debian/bookworm/default,debian/bookworm")
  }, 60_000)

  it("publishes an rsync upload (temporary dotfiles renamed into place) and a staging folder renamed into place, once each", async () => {
    const w = makeWebRoot()
    const watch = watchOn(w)
    await waitFor("the watcher", () => watch.log().includes("watching"))
    const src = tempDir()
    writeMetadataTarball(join(src, "up", "lxd.tar.xz"))
    writeFileSync(join(src, "up", "rootfs.squashfs"), Buffer.concat([squashfsHead(3 * 1024 * 1024), Buffer.alloc(3 * 1024 * 1024 - 96, 1)]))
    mkdirSync(w.version(key), { recursive: true })
    execFileSync("rsync", ["-a", "--bwlimit=1000", `${join(src, "up")}/`, `${w.version(`${key}/20240101_10:00`)}/`])
    await waitFor("the rsynced version", () => published(w, "20240101_10:00"))
    expect(readCatalog(w)!.images.products["debian:bookworm:amd64:default"]!.versions["20240101_10:00"]!.items["rootfs.squashfs"]!.sha256).toBe(
      sha(join(src, "up", "rootfs.squashfs"))
    )
    // upload into a hidden staging folder, then rename it
    addContainer(w, `${key}/.20240102_10:00`, "staged")
    await sleep(1200)
    expect(published(w, ".20240102_10:00")).toBe(false)
    expect(JSON.stringify(readCatalog(w))).not.toContain("20240102")
    renameSync(w.version(`${key}/.20240102_10:00`), w.version(`${key}/20240102_10:00`))
    await waitFor("the renamed staging folder", () => published(w, "20240102_10:00"))
    await sleep(1000)
    expect(countOf(watch.log(), `INFO  published ${key}/20240101_10:00`)).toBe(1)
    expect(countOf(watch.log(), `INFO  published ${key}/20240102_10:00`)).toBe(1)
  }, 60_000)

  it("refuses each kind of garbage once, naming the path, and takes it when it is fixed", async () => {
    const w = makeWebRoot()
    addContainer(w, `${key}/20240101_10:00`, "good")
    const watch = watchOn(w)
    await waitFor("the first catalog", () => published(w, "20240101_10:00"))
    // before the sparc folders, whose events bring the full reconcile that logs it as skipped
    addContainer(w, `${key}/20241350_10:00`, "notadate")
    const bad = w.version(`${key}/20240102_10:00`)
    mkdirSync(bad, { recursive: true })
    writeFileSync(join(bad, "lxd.tar.xz"), Buffer.from("random bytes ".repeat(100)))
    writeSquashfs(join(bad, "rootfs.squashfs"), "bad")
    addContainer(w, "debian/bookworm/sparc/default/20240101_10:00", "arch")
    const outside = tempDir()
    addContainer({ ...w, version: (rel) => join(outside, rel) }, "v", "out")
    symlinkSync(join(outside, "v"), w.version(`${key}/20240103_10:00`))
    const empty = w.version(`${key}/20240104_10:00`)
    mkdirSync(empty, { recursive: true })
    writeMetadataTarball(join(empty, "lxd.tar.xz"))
    writeFileSync(join(empty, "rootfs.squashfs"), "")
    await waitFor("the refusals", () => ["20240102_10:00/lxd.tar.xz: not a tarball", "sparc/default/20240101_10:00: unknown architecture", "20240103_10:00: symlink leading outside", "20240104_10:00/rootfs.squashfs: empty file", `skipped ${key}/20241350_10:00`].every((t) => watch.log().includes(t)))
    await sleep(1500)
    expect(publishedVersions(w)).toEqual([`${key}/20240101_10:00`])
    const log = watch.log()
    expect(countOf(log, "WARN  refused")).toBe(4)
    // fixed: a real tarball in place of the random bytes
    writeMetadataTarball(join(bad, "lxd.tar.xz"), metadataYaml())
    await waitFor("the fixed version", () => published(w, "20240102_10:00"))
    expect(watch.child.exitCode).toBeNull()
  }, 60_000)

  it("lets update run beside it: one writer at a time, and the catalog ends true", async () => {
    const w = makeWebRoot()
    for (let i = 1; i <= 3; i++) addContainer(w, `${key}/2024010${i}_10:00`, `u${i}`)
    const watch = watchOn(w)
    await waitFor("the first catalog", () => publishedVersions(w).length === 3)
    const reader = startReader(w)
    addContainer(w, `${key}/20240104_10:00`, "u4")
    const update = runBin(["--log-file", join(w.root, "update.log"), "--config", join(w.root, "none.toml"), "update", "--img-dir", w.images, "--streams-dir", w.streams])
    expect(update.code, update.stderr).toBe(0)
    rmSync(w.version(`${key}/20240101_10:00`), { recursive: true })
    await waitFor("the catalog to follow", () => publishedVersions(w).join() === [2, 3, 4].map((i) => `${key}/2024010${i}_10:00`).join())
    await sleep(1500)
    expect(publishedVersions(w)).toEqual([2, 3, 4].map((i) => `${key}/2024010${i}_10:00`))
    expect((await reader.stop()).problems).toEqual([])
    expect(watch.child.exitCode).toBeNull()
  }, 60_000)

  it("keeps listing a young version another writer published, instead of leaving it out for its settle window", async () => {
    const w = makeWebRoot()
    const watch = watchOn(w, { settle: "10" })
    await waitFor("the first reconcile", () => watch.log().includes("reconciled 0 versions"))
    addContainer(w, `${key}/20240101_10:00`, "y1")
    const update = runBin(["--log-file", join(w.root, "update.log"), "--config", join(w.root, "none.toml"), "update", "--img-dir", w.images, "--streams-dir", w.streams])
    expect(update.code, update.stderr).toBe(0)
    // from now on the version is listed at every look, while the service takes in the other writer's catalog
    const missing: Array<number> = []
    const until = Date.now() + 20_000
    let after: number | undefined
    while (Date.now() < (after ?? until)) {
      if (!published(w, "20240101_10:00")) missing.push(Date.now())
      if (after === undefined && watch.log().includes("written by another process")) after = Date.now() + 2000
      await sleep(20)
    }
    expect(after, "watch never saw the other writer").toBeDefined()
    expect(missing).toEqual([])
    expect(watch.log()).toMatch(/published debian\/bookworm\/amd64\/default\/20240101_10:00/)
  }, 60_000)

  it("stops on SIGTERM within 5 s with exit 0, and the next start reuses the hashes", async () => {
    const { w, first } = await publishedOne("t")
    const before = readFileSync(join(w.streams, "images.json"), "utf8")
    const started = Date.now()
    expect(await first.stop("SIGTERM")).toBe(0)
    expect(Date.now() - started).toBeLessThan(5000)
    const second = watchOn(w)
    await waitFor("the restart", () => second.log().includes("reconciled"))
    expect(readFileSync(join(w.streams, "images.json"), "utf8")).toBe(before)
    expect(second.log()).not.toContain("INFO  published")
    // the catalog's text was taken from images.json, which the last generation wrote
    expect(second.log()).toContain("catalog text: 1 products as images.json holds them, 0 rendered")
  }, 60_000)

  it("after images.json was edited while it was stopped, renders the catalog again at start and puts the truth back", async () => {
    const { w, first } = await publishedOne("e")
    expect(await first.stop("SIGTERM")).toBe(0)
    const file = join(w.streams, "images.json")
    const truth = readFileSync(file, "utf8")
    const sha256 = /"sha256": "([0-9a-f]{64})"/.exec(truth)![1]!
    // the same products, laid out the same way, one hash wrong
    writeFileSync(file, truth.replace(sha256, sha256.split("").reverse().join("")))
    const second = watchOn(w)
    await waitFor("the restart", () => second.log().includes("reconciled"))
    expect(second.log()).toContain("catalog text: 0 products as images.json holds them, 1 rendered")
    expect(readFileSync(file, "utf8")).toBe(truth)
  }, 60_000)

  it("after a kill -9 in the middle of hashing, the files are whole and the next start reconciles to the truth", async () => {
    const w = makeWebRoot()
    addContainer(w, `${key}/20240101_10:00`, "k1")
    const first = watchOn(w)
    await waitFor("the first catalog", () => published(w, "20240101_10:00"))
    const big = w.version(`${key}/20240102_10:00`)
    mkdirSync(big, { recursive: true })
    writeMetadataTarball(join(big, "lxd.tar.xz"))
    const fd = openSync(join(big, "rootfs.squashfs"), "w")
    writeSync(fd, squashfsHead(512 * 1024 * 1024))
    for (let i = 0; i < 64; i++) writeSync(fd, Buffer.alloc(8 * 1024 * 1024 - (i === 63 ? 96 : 0), i)) // 512 MiB: hashing takes a while
    closeSync(fd)
    await waitFor("hashing to start", () => first.log().includes(`event add ${key}/20240102_10:00/rootfs.squashfs`))
    await sleep(700)
    first.child.kill("SIGKILL")
    await first.exited
    expect(readCatalog(w)).toBeDefined() // both files parse
    watchOn(w)
    await waitFor("the restart to publish the big version", () => published(w, "20240102_10:00"), 60_000)
    expect(publishedVersions(w)).toEqual([`${key}/20240101_10:00`, `${key}/20240102_10:00`])
    expect(execFileSync("ls", ["-A", w.streams]).toString().trim().split("\n").sort()).toEqual(["images.json", "index.json"])
  }, 120_000)

  it("exits non-zero, with one line saying why, when the service itself cannot go on", async () => {
    const w = makeWebRoot()
    addContainer(w, `${key}/20240101_10:00`, "gone")
    const watch = watchOn(w)
    await waitFor("the first catalog", () => published(w, "20240101_10:00"))
    rmSync(w.images, { recursive: true })
    const code = await Promise.race([watch.exited, sleep(20_000).then(() => "still running")])
    expect(code).not.toBe(0)
    expect(code).not.toBe("still running")
    expect(watch.log()).toMatch(/lxd-image-server: images folder .* does not exist/)
  }, 60_000)

  it("reload sends SIGHUP, which reloads the config file without a restart", async () => {
    const w = makeWebRoot()
    addContainer(w, `${key}/20240101_10:00`, "r")
    const config = join(w.root, "config.toml")
    writeFileSync(config, 'compat = "lxd"\n')
    const watch = watchOn(w, { config })
    const items = () => Object.keys(readCatalog(w)?.images.products["debian:bookworm:amd64:default"]?.versions["20240101_10:00"]?.items ?? {}).sort()
    await waitFor("the lxd-only catalog", () => items().join() === "lxd.tar.xz,rootfs.squashfs")
    writeFileSync(config, 'compat = "incus"\n')
    const reload = (file: string) => runBin(["--log-file", join(w.root, "r.log"), "--config", file, "reload", "--pidfile", join(w.root, "watch.pid")])
    const reloaded = reload(config)
    expect(reloaded.code, reloaded.stderr).toBe(0)
    await waitFor("the incus-only catalog", () => items().join() === "incus.tar.xz,rootfs.squashfs")
    // a bad file keeps the running config, and the service runs on
    appendFileSync(config, "bad_key = 1\n")
    expect(reload(join(w.root, "none.toml")).code).toBe(0)
    await waitFor("the refusal of the bad config", () => watch.log().includes("SIGHUP: kept the running config"))
    expect(watch.log()).toContain("unknown key 'bad_key'")
    expect(watch.child.exitCode).toBeNull()
  }, 60_000)
})
