/**
 * End to end, the lifecycle with the real clients: after `prune`, `lxc` and `incus` list exactly the kept
 * versions, while the LXD daemon, which read the catalog before the prune (its cache keeps it up to an hour),
 * still downloads a pruned version by fingerprint during the grace period; after the grace its files are gone.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs"
import { join } from "node:path"
import { runBin } from "../support/Bin.js"
import { tempDir } from "../support/Images.js"
import { haveRoot, haveTools } from "../support/Tools.js"
import { addContainer, makeWebRoot, type WebRoot } from "../support/Tree.js"
import { sleep } from "../support/WatchProcess.js"
import { client, clientEnv, type ListedImage, type RunningLxd, startLxd } from "./support/Clients.js"
import { type RunningNginx, startStaticNginx } from "./support/Nginx.js"
import { makeTestCert } from "./support/Tls.js"

const ready = haveTools("nginx", "openssl", "lxc", "incus", "lxd", "mksquashfs", "tar", "xz") && haveRoot()

const versions = ["20240101_10:00", "20240102_10:00", "20240103_10:00"]
const deb = (v: string) => `debian/bookworm/amd64/default/${v}`
const fingerprintOf = (w: WebRoot, v: string) =>
  createHash("sha256").update(readFileSync(join(w.version(deb(v)), "lxd.tar.xz"))).update(readFileSync(join(w.version(deb(v)), "rootfs.squashfs"))).digest("hex")
// 0.01 h = 36 s: long enough for the daemon's download, short enough for a test
const grace = "0.01"

describe.skipIf(!ready)("prune with the real clients", () => {
  let work: string
  let web: WebRoot
  let lxd: RunningLxd
  let nginx: RunningNginx
  let fingerprints: ReadonlyArray<string>
  const run = (command: string, ...args: Array<string>) =>
    runBin(["--log-file", join(work, "lis.log"), "--config", join(work, "none.toml"), command, "--img-dir", web.images, "--streams-dir", web.streams, "--state-dir", join(work, "state"), ...args])

  beforeAll(async () => {
    work = tempDir("lis-e2e-prune-")
    chmodSync(work, 0o755)
    web = makeWebRoot()
    chmodSync(web.root, 0o755)
    versions.forEach((v, i) => addContainer(web, deb(v), `e${i}`))
    fingerprints = versions.map((v) => fingerprintOf(web, v))
    const update = run("update")
    expect(update.code, update.stderr).toBe(0)
    mkdirSync(join(work, "nginx"))
    const tls = makeTestCert(work)
    nginx = await startStaticNginx(join(work, "nginx"), web.root, tls)
    lxd = await startLxd(work)
    for (const name of ["lxc", "incus"] as const) client(work, name).addRemote("r", nginx.url, tls.cert)
  }, 180_000)

  afterAll(async () => {
    await lxd?.stop()
    await nginx?.stop()
  })

  it("lists the kept versions only, the daemon still downloads a pruned one during the grace, and its files go after it", async () => {
    const lxc = client(work, "lxc")
    const sorted = (images: ReadonlyArray<ListedImage>) => images.map((i) => i.fingerprint).sort()
    expect(sorted(lxc.listImages("r"))).toEqual([...fingerprints].sort())
    // the daemon reads the catalog (and caches it) before the prune, as a daemon in use would have
    lxc.run(["image", "copy", `r:${fingerprints[2]}`, "local:"])
    lxc.run(["image", "delete", `local:${fingerprints[2]}`])

    const pruned = run("prune", "--keep", "1", "--grace", grace)
    expect(pruned.code, pruned.stderr).toBe(0)
    expect(sorted(lxc.listImages("r"))).toEqual([fingerprints[2]])
    // the incus CLI keeps its own 5-minute cache of the catalog: a client that had none sees the new one
    rmSync(join(clientEnv(work)["INCUS_CONF"]!, "cache"), { recursive: true, force: true })
    expect(sorted(client(work, "incus").listImages("r"))).toEqual([fingerprints[2]])

    const started = Date.now()
    lxc.run(["image", "copy", `r:${fingerprints[0]}`, "local:"])
    const local = JSON.parse(lxc.run(["image", "list", "local:", "--format", "json"])) as ReadonlyArray<ListedImage>
    expect(local.map((i) => i.fingerprint)).toEqual([fingerprints[0]])
    lxc.run(["image", "delete", `local:${fingerprints[0]}`])
    expect(Date.now() - started).toBeLessThan(36_000)

    await sleep(Math.max(0, 37_000 - (Date.now() - started)))
    const after = run("prune", "--keep", "1", "--grace", grace)
    expect(after.code, after.stderr).toBe(0)
    expect(existsSync(web.version(deb(versions[0]!)))).toBe(false)
    expect(existsSync(web.version(deb(versions[1]!)))).toBe(false)
    expect(sorted(lxc.listImages("r"))).toEqual([fingerprints[2]])
  }, 240_000)
})
