/**
 * What hostile uploaders and real hosts do to the service, each a defect seen before it was fixed: an odd file
 * name, a file replaced while `update` hashes it, a broken version re-read on every reconcile, a full disk
 * under the catalog, symlinked version folders. Real processes over real files.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import { execFileSync, spawn } from "node:child_process"
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync, writeSync } from "node:fs"
import { join } from "node:path"
import { binPath, runBin } from "../support/Bin.js"
import { squashfsHead, tempDir, writeMetadataTarball, writeSquashfs } from "../support/Images.js"
import { haveRoot, haveTools } from "../support/Tools.js"
import { addContainer, makeWebRoot, type WebRoot } from "../support/Tree.js"
import { publishedVersions, readCatalog, sleep, startWatch, waitFor, type WatchProcess, type WatchStart } from "../support/WatchProcess.js"

const key = "debian/bookworm/amd64/default"
const running: Array<WatchProcess> = []
const watchOn = (w: WebRoot, options: WatchStart = {}) => {
  const p = startWatch(w, options)
  running.push(p)
  return p
}
const mounts: Array<string> = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop("SIGKILL")))
  for (const m of mounts.splice(0)) execFileSync("umount", ["-l", m])
})
const published = (w: WebRoot, v: string, k = key) => publishedVersions(w).includes(`${k}/${v}`)
const update = (w: WebRoot) => runBin(["--log-file", join(w.root, "u.log"), "--config", join(w.root, "none.toml"), "update", "--img-dir", w.images, "--streams-dir", w.streams])
/** Bytes this process has read through read(2) so far, page cache or not. */
const bytesRead = (pid: number) => Number(/rchar: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, "utf8"))![1])
/** A big sparse file: a squashfs's start (unless `head` is false), `seed` after it and at the end, zeros between. */
const sparse = (target: string, size: number, seed: string, head = true) => {
  const fd = openSync(target, "w")
  if (head) writeSync(fd, squashfsHead(size), 0, 96, 0)
  writeSync(fd, seed, 96)
  writeSync(fd, seed, size - seed.length)
  closeSync(fd)
}
const sha256 = (file: string) => execFileSync("sha256sum", [file]).toString().split(" ")[0]

describe.skipIf(!haveTools("tar", "xz", "mksquashfs"))("hostile uploads", () => {
  it("refuses alone a version with a file name clients would mangle: update exits 0 and the service publishes the rest", async () => {
    const w = makeWebRoot()
    addContainer(w, `${key}/20240101_10:00`, "a")
    const odd = w.version(`${key}/20240102_10:00`)
    writeMetadataTarball(join(odd, "lxd.tar.xz"))
    writeSquashfs(join(odd, "my image (copy).squashfs"), "odd")
    const u = update(w)
    expect(u.code, u.stderr).toBe(0)
    expect(u.stderr).toContain(`refused ${odd}/my image (copy).squashfs: file name has characters other than`)
    expect(published(w, "20240101_10:00")).toBe(true)
    expect(published(w, "20240102_10:00")).toBe(false)

    rmSync(w.streams, { recursive: true })
    const watch = watchOn(w)
    await waitFor("the good version", () => published(w, "20240101_10:00"))
    addContainer(w, `${key}/20240103_10:00`, "c")
    await waitFor("a later version, so the service is alive", () => published(w, "20240103_10:00"))
    expect(watch.child.exitCode).toBe(null)
    expect(published(w, "20240102_10:00")).toBe(false)
  })

  it("update never publishes the hash of a file replaced while it was being hashed", async () => {
    const w = makeWebRoot()
    const v = addContainer(w, `${key}/20240101_10:00`, "a")
    const rootfs = join(v, "rootfs.squashfs")
    sparse(rootfs, 1536 * 1024 * 1024, "old bytes")
    const child = spawn(process.execPath, [binPath, "--log-file", join(w.root, "u.log"), "--config", join(w.root, "none.toml"), "update", "--img-dir", w.images, "--streams-dir", w.streams], { stdio: ["ignore", "ignore", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve))
    // once a worker has read past the start of the rootfs, its first bytes are rewritten in place: same size
    const readingPast = () => {
      try {
        return readdirSync(`/proc/${child.pid}/fd`).some((fd) => {
          try {
            if (readlinkSync(`/proc/${child.pid}/fd/${fd}`) !== rootfs) return false
            const pos = Number(/pos:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/fdinfo/${fd}`, "utf8"))![1])
            return pos > 16 * 1024 * 1024
          } catch {
            return false
          }
        })
      } catch {
        return false
      }
    }
    await waitFor("update to read into the rootfs", readingPast, 30_000)
    const fd = openSync(rootfs, "r+")
    writeSync(fd, "new bytes", 96)
    closeSync(fd)
    expect(await exited, stderr).toBe(0)
    const items = readCatalog(w)!.images.products["debian:bookworm:amd64:default"]!.versions["20240101_10:00"]!.items
    expect(items["rootfs.squashfs"]!.sha256).toBe(sha256(rootfs))
  }, 60_000)

  it("reads a refused version once, not on every reconcile", async () => {
    const w = makeWebRoot()
    const v = w.version(`${key}/20240101_10:00`)
    mkdirSync(v, { recursive: true })
    writeFileSync(join(v, "lxd.tar.xz"), Buffer.from("not a tarball at all ".repeat(50)))
    sparse(join(v, "rootfs.squashfs"), 300 * 1024 * 1024, "big")
    const watch = startWatch(w, { reconcileInterval: "1" })
    running.push(watch)
    await waitFor("the refusal", () => watch.log().includes("not a tarball"))
    await sleep(1500)
    const before = bytesRead(watch.child.pid!)
    const reconciles = () => watch.log().split("reconciling the whole tree (timer)").length
    const first = reconciles()
    await waitFor("three more reconciles", () => reconciles() >= first + 3, 20_000)
    const read = bytesRead(watch.child.pid!) - before
    expect(read, `${(read / 2 ** 20).toFixed(0)} MiB read over 3 reconciles`).toBeLessThan(20 * 2 ** 20)
    expect(watch.log().split("not a tarball").length - 1).toBe(1)
  }, 60_000)

  it("stops hashing a version deleted while its big rootfs is hashed: the next upload does not wait for it", async () => {
    const w = makeWebRoot()
    addContainer(w, `${key}/20240101_10:00`, "a")
    const watch = watchOn(w)
    await waitFor("the first version", () => published(w, "20240101_10:00"))
    // 64 GiB of zeros (sparse): read to its end, its two sha256 take minutes
    const big = w.version(`${key}/20240102_10:00`)
    mkdirSync(big, { recursive: true })
    sparse(join(big, "rootfs.squashfs"), 64 * 2 ** 30, "big")
    writeMetadataTarball(join(big, "lxd.tar.xz"))
    const pid = watch.child.pid!
    const start = bytesRead(pid)
    await waitFor("the hash of the big rootfs to begin", () => bytesRead(pid) - start > 256 * 2 ** 20, 30_000)
    rmSync(big, { recursive: true })
    addContainer(w, `${key}/20240103_10:00`, "c")
    await waitFor("the next upload", () => published(w, "20240103_10:00"), 30_000)
    expect(published(w, "20240102_10:00")).toBe(false)
    expect(bytesRead(pid) - start, "bytes read").toBeLessThan(8 * 2 ** 30)
  }, 90_000)

  it("refuses a rootfs that is not what its name says before reading it: 64 GiB of zeros named rootfs.squashfs", async () => {
    const w = makeWebRoot()
    addContainer(w, `${key}/20240101_10:00`, "a")
    const watch = watchOn(w)
    await waitFor("the first version", () => published(w, "20240101_10:00"))
    const pid = watch.child.pid!
    const start = bytesRead(pid)
    const zeros = w.version(`${key}/20240102_10:00`)
    mkdirSync(zeros, { recursive: true })
    sparse(join(zeros, "rootfs.squashfs"), 64 * 2 ** 30, "zeros", false)
    writeMetadataTarball(join(zeros, "lxd.tar.xz"))
    await waitFor("the refusal", () => watch.log().includes("not a squashfs (it does not start with hsqs)"), 30_000)
    expect(watch.log()).toMatch(new RegExp(`WARN .*${key}/20240102_10:00/rootfs.squashfs.*not a squashfs`))
    addContainer(w, `${key}/20240103_10:00`, "c")
    await waitFor("the next upload", () => published(w, "20240103_10:00"), 30_000)
    expect(published(w, "20240102_10:00")).toBe(false)
    expect(bytesRead(pid) - start, "bytes read").toBeLessThan(64 * 2 ** 20)
    // update refuses it the same way, and exits 0 with the rest published
    const u = update(w)
    expect(u.code, u.stderr).toBe(0)
    expect(u.stderr).toContain("not a squashfs")
    expect(publishedVersions(w)).toEqual([`${key}/20240101_10:00`, `${key}/20240103_10:00`])
  }, 90_000)

  it("looks again at a version whose symlinked rootfs leads into another version when that one's files change or go", async () => {
    const w = makeWebRoot()
    const target = addContainer(w, "debian/bookworm/amd64/cloud/20240101_10:00", "1")
    const linked = w.version(`${key}/20240102_10:00`)
    mkdirSync(linked, { recursive: true })
    writeMetadataTarball(join(linked, "lxd.tar.xz"))
    symlinkSync("../../cloud/20240101_10:00/rootfs.squashfs", join(linked, "rootfs.squashfs"))
    const watch = watchOn(w)
    const listedSha = () => readCatalog(w)?.images.products["debian:bookworm:amd64:default"]?.versions["20240102_10:00"]?.items["rootfs.squashfs"]?.sha256
    await waitFor("both versions", () => published(w, "20240102_10:00") && published(w, "20240101_10:00", "debian/bookworm/amd64/cloud"), 20_000, watch.log)
    expect(listedSha()).toBe(sha256(join(target, "rootfs.squashfs")))
    // the target replaced as rsync does: a temporary file renamed over it; no event under the linked folder
    writeSquashfs(join(target, ".rootfs.squashfs.tmp"), "2")
    execFileSync("mv", [join(target, ".rootfs.squashfs.tmp"), join(target, "rootfs.squashfs")])
    const now = sha256(join(target, "rootfs.squashfs"))
    await waitFor("the linked version's new hash (long before the next full reconcile)", () => listedSha() === now, 10_000, watch.log)
    // the target's version removed: the link dangles, and the version leaves the catalog
    rmSync(target, { recursive: true })
    await waitFor("the linked version withdrawn", () => !published(w, "20240102_10:00"), 10_000, watch.log)
    expect(watch.log()).toContain("rootfs.squashfs is not a regular file (a dangling symlink)")
  })

  it("refuses a symlinked version folder, and never publishes a hidden staging folder under any name", async () => {
    const w = makeWebRoot()
    addContainer(w, `${key}/.20240102_10:00`, "staging")
    addContainer(w, `${key}/20240101_10:00`, "a")
    symlinkSync(w.version(`${key}/.20240102_10:00`), w.version(`${key}/20240102_10:00`))
    mkdirSync(w.version(`${key}/20240103_10:00`), { recursive: true })
    symlinkSync(w.version(`${key}/.20240102_10:00/rootfs.squashfs`), w.version(`${key}/20240103_10:00/rootfs.squashfs`))
    symlinkSync(w.version(`${key}/.20240102_10:00/lxd.tar.xz`), w.version(`${key}/20240103_10:00/lxd.tar.xz`))
    const watch = watchOn(w)
    await waitFor("the real version", () => published(w, "20240101_10:00"))
    await waitFor("both refusals", () => watch.log().includes("a symlink to a folder") && watch.log().includes("symlink into a hidden folder"))
    expect(published(w, "20240102_10:00")).toBe(false)
    expect(published(w, "20240103_10:00")).toBe(false)
    expect(readFileSync(join(w.streams, "images.json"), "utf8")).not.toContain("20240102")
  })
})

describe.skipIf(!haveTools("tar", "xz", "mksquashfs", "mount") || !haveRoot())("a full disk under the catalog", () => {
  it("keeps the previous catalog, stays up, shows it in its state, and publishes once there is room again", async () => {
    const w = makeWebRoot()
    addContainer(w, `${key}/20240101_10:00`, "a")
    mkdirSync(w.streams, { recursive: true })
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", w.streams])
    mounts.push(w.streams)
    const watch = watchOn(w)
    const logged = (v: string) => watch.log().includes(`published ${key}/${v}`)
    await waitFor("the first catalog", () => published(w, "20240101_10:00"), 20_000, watch.log)
    // images.json is written before index.json: the disk is filled once both are in place (the log line follows
    // the write), else index.json's rename frees the old one's page, and the next catalog fits in it
    await waitFor("its log line", () => logged("20240101_10:00"), 5_000, watch.log)
    const before = readFileSync(join(w.streams, "images.json"), "utf8")
    // fill the disk
    const filler = join(w.streams, "filler")
    const fd = openSync(filler, "w")
    try {
      for (;;) writeSync(fd, Buffer.alloc(4096, 1))
    } catch {
      closeSync(fd)
    }
    addContainer(w, `${key}/20240102_10:00`, "b")
    await waitFor("the failed write to be logged", () => watch.log().includes("cannot write the catalog"), 20_000, watch.log)
    await sleep(1500)
    expect(watch.child.exitCode).toBe(null)
    expect(readFileSync(join(w.streams, "images.json"), "utf8")).toBe(before)
    const status = JSON.parse(readFileSync(join(w.root, "state", "status.json"), "utf8"))
    expect(status.write_error.reason).toMatch(/no space|ENOSPC/i)
    // once per streak; the retries are debug lines
    expect(watch.log().split("\n").filter((l) => / ERROR +cannot write the catalog/.test(l))).toHaveLength(1)
    expect(watch.log()).not.toContain(`published ${key}/20240102_10:00`)
    rmSync(filler)
    await waitFor("the version once there is room", () => published(w, "20240102_10:00"), 30_000, watch.log)
    // the line follows the write: the generation reaches the log through its own queue
    await waitFor("its log line", () => logged("20240102_10:00"), 5_000, watch.log)
    expect(existsSync(join(w.root, "state", "status.json"))).toBe(true)
    await waitFor("the state to clear", () => JSON.parse(readFileSync(join(w.root, "state", "status.json"), "utf8")).write_error === null, 20_000, watch.log)
  }, 60_000)
})
