/**
 * `watch` with a push mirror, all real: sshd on 127.0.0.1, rsync over ssh, a reader on the mirror's web root the
 * whole time. A big version is pushed while the reader checks that every catalog it reads names only files that
 * are there and whole; sshd stops during a push (the mirror reports failing) and comes back (the mirror catches
 * up); SIGTERM during a push stops the service within 5 s and leaves no rsync behind.
 */
import { randomBytes } from "node:crypto"
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, writeSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { runBinAsync } from "../support/Bin.js"
import { metadataYaml, writeMetadataTarball } from "../support/Images.js"
import { haveTools } from "../support/Tools.js"
import { addContainer, type WebRoot } from "../support/Tree.js"
import { sleep, startReader, startWatch, waitFor, type WatchProcess } from "../support/WatchProcess.js"
import { expectSameCatalog, type PrimaryWithMirror, primaryWithMirror } from "./support/Mirror.js"
import { type RunningSshd, sshdPath } from "./support/Sshd.js"

const ready = haveTools(sshdPath, "ssh", "ssh-keygen", "rsync", "mksquashfs")

/** A VM version of `mib` MiB of random disk, made in a hidden folder and renamed into place as uploaders do. */
const addBigVm = (w: WebRoot, rel: string, mib: number) => {
  const final = w.version(rel)
  const staging = join(final, "..", `.${rel.split("/").at(-1)}`)
  mkdirSync(staging, { recursive: true })
  writeMetadataTarball(join(staging, "lxd.tar.xz"), metadataYaml({ os: "Fedora", release: "40", variant: "cloud" }))
  const fd = openSync(join(staging, "disk.qcow2"), "w")
  writeSync(fd, Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]))
  for (let i = 0; i < mib; i++) writeSync(fd, randomBytes(1 << 20))
  closeSync(fd)
  renameSync(staging, final)
}

/** A reader of the mirror's web root: every file its catalog names must be there, at its full size. */
const startMirrorReader = (root: string) => {
  const reader = startReader({ streams: join(root, "streams", "v1") }, ({ index, images }) => [
    ...(index.index.images?.products ?? []).filter((key) => !images.products[key]).map((key) => `index names ${key}, images.json lacks it`),
    ...Object.values(images.products).flatMap((product) =>
      Object.values(product.versions).flatMap((version) =>
        Object.values(version.items).flatMap((item) => {
          const file = join(root, item.path)
          if (!existsSync(file)) return [`missing ${item.path}`]
          const size = statSync(file).size
          return size === item.size ? [] : [`partial ${item.path}: ${size} of ${item.size}`]
        })
      )
    )
  ])
  return { stop: async () => distinctProblems(await reader.stop()) }
}

const distinctProblems = (r: { reads: number; problems: ReadonlyArray<string> }) => ({ reads: r.reads, problems: [...new Set(r.problems)] })

/** rsync's `.~tmp~` folder of --delay-updates, anywhere under `dir`: a push is sending files. */
const transferring = (dir: string): boolean => {
  if (!existsSync(dir)) return false
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === ".~tmp~") return true
    if (e.isDirectory() && transferring(join(dir, e.name))) return true
  }
  return false
}

/** Processes whose command line names `text` (our rsync and ssh carry the mirror's paths). */
const processesNaming = (text: string) =>
  readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(text)
      } catch {
        return false
      }
    })

describe.skipIf(!ready)("watch pushes every generation to a mirror", () => {
  let work: string
  let primary: WebRoot
  let sshd: RunningSshd
  let mirrorRoot: string
  let config: string
  let setup: PrimaryWithMirror | undefined
  let watch: WatchProcess | undefined

  const mirrorStatus = async () => {
    const r = await runBinAsync(["--log-file", join(work, "cli.log"), "--config", config, "mirror", "status", "--json"])
    return (JSON.parse(r.stdout) as { mirrors: Array<Record<string, unknown>> }).mirrors[0]!
  }
  const waitForStatus = async (what: string, check: (s: Record<string, unknown>) => boolean, timeoutMs = 120_000) => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const s = await mirrorStatus()
      if (check(s)) return s
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; status: ${JSON.stringify(s)}\n${watch?.log().slice(-3000)}`)
      await sleep(500)
    }
  }

  beforeAll(async () => {
    // watch deletes withdrawn versions' files 36 s after they leave the catalog
    setup = await primaryWithMirror("lis-mirror-watch-", 0.01)
    ;({ work, primary, mirrorRoot, config, sshd } = setup)
    addContainer(primary, "debian/bookworm/amd64/default/20240101_10:00", "1")
  }, 60_000)

  afterAll(async () => {
    await watch?.stop()
    await setup?.remove()
  })

  it("pushes at start and after each generation; a reader on the mirror never sees a missing or partial file", async () => {
    watch = startWatch(primary, { config })
    await waitForStatus("the first push", (s) => s["state"] === "in-sync" && s["generation"] === 1)
    expectSameCatalog(primary, mirrorRoot)
    const reader = startMirrorReader(mirrorRoot)
    addBigVm(primary, "fedora/40/amd64/cloud/20240104_10:00", 200)
    await waitForStatus("the big version on the mirror", (s) => s["state"] === "in-sync" && s["generation"] === 2)
    const { reads, problems } = await reader.stop()
    expect(problems).toEqual([])
    expect(reads).toBeGreaterThan(10)
    expectSameCatalog(primary, mirrorRoot)
  }, 300_000)

  it("reports failing while sshd is down, then catches up once it is back", async () => {
    addBigVm(primary, "fedora/40/amd64/cloud/20240105_10:00", 200)
    // stopped as soon as the push sends files (or at once, if it was quicker than we could see)
    await waitFor("the push to begin", () => transferring(join(mirrorRoot, "images")), 60_000).catch(() => undefined)
    await sshd.stop()
    // a generation that cannot reach the mirror while sshd is down, whatever the push above did
    addContainer(primary, "debian/bookworm/amd64/default/20240106_10:00", "6")
    const failing = await waitForStatus("failing", (s) => s["state"] === "failing")
    expect(String(failing["last_error"])).toMatch(/Connection refused|connection unexpectedly closed|Broken pipe|Connection reset|closed by remote host/i)
    expect(failing["lag_generations"]).toBeGreaterThanOrEqual(1)
    await sshd.start()
    await waitForStatus("the mirror catching up", (s) => s["state"] === "in-sync" && s["generation"] === 4)
    expectSameCatalog(primary, mirrorRoot)
  }, 300_000)

  it("a withdrawn version's files stay on the mirror for the grace period, and leave it when they leave the primary", async () => {
    const version = "debian/bookworm/amd64/default/20240101_10:00"
    const generation = Number((await mirrorStatus())["generation"])
    // 36 s of grace ([prune] grace_hours): long enough to look at the mirror in it, on a loaded machine
    const removed = await runBinAsync(["--log-file", join(work, "cli.log"), "--config", config, "remove", "debian:bookworm:amd64:default@20240101_10:00"])
    expect(removed.code, removed.stderr).toBe(0)
    await waitForStatus("the withdrawal on the mirror", (s) => s["state"] === "in-sync" && Number(s["generation"]) > generation)
    expect(readFileSync(join(mirrorRoot, "streams", "v1", "images.json"), "utf8")).not.toContain("20240101_10:00")
    expect(existsSync(join(primary.images, version, "rootfs.squashfs"))).toBe(true)
    expect(existsSync(join(mirrorRoot, "images", version, "rootfs.squashfs"))).toBe(true)
    // the grace period over, watch deletes the folder and pushes: the mirror lets go of it too
    await waitFor("the deletion on the primary", () => !existsSync(primary.version(version)), 120_000)
    await waitFor("the deletion on the mirror", () => !existsSync(join(mirrorRoot, "images", version)), 60_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${watch!.log().slice(-3000)}`)
    })
    expectSameCatalog(primary, mirrorRoot)
  }, 300_000)

  it("SIGTERM stops a push within 5 s and leaves no rsync behind", async () => {
    addBigVm(primary, "fedora/40/amd64/cloud/20240107_10:00", 300)
    // the push has begun once its first step (the image files, rsync running) is logged: the files themselves
    // may cross the loopback between two looks at the mirror's folder (in CI the push ran, unseen there)
    const begun = /published fedora\/40\/amd64\/cloud\/20240107_10:00[^\n]*\n(?:.*\n)*?.*mirror eu1: image files/
    await waitFor("the push to begin", () => transferring(join(mirrorRoot, "images")) || begun.test(watch!.log()), 120_000).catch((e: Error) => {
      // the service's own account, for a push that never began
      throw new Error(`${e.message}\n${watch!.log().slice(-6000)}`)
    })
    const asked = Date.now()
    const code = await watch!.stop("SIGTERM")
    const took = Date.now() - asked
    expect(code).toBe(0)
    expect(took).toBeLessThan(5_000)
    expect(processesNaming(mirrorRoot)).toEqual([])
    // the mirror still serves a whole catalog: the last one pushed
    const images = JSON.parse(readFileSync(join(mirrorRoot, "streams", "v1", "images.json"), "utf8"))
    expect(JSON.stringify(images)).not.toContain("20240107_10:00")
    watch = undefined
  }, 300_000)
})
