/**
 * Push mirrors with the real parts: sshd on 127.0.0.1, rsync over ssh, one mirror reached with a plain key and
 * one with a key limited by rrsync to its web root, `mirror push` and `mirror status` as a user runs them.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { client, startLxd } from "../e2e/support/Clients.js"
import { type RunningNginx, startStaticNginx } from "../e2e/support/Nginx.js"
import { makeTestCert } from "../e2e/support/Tls.js"
import { runBinAsync } from "../support/Bin.js"
import { tempDir } from "../support/Images.js"
import { haveRoot, haveTools } from "../support/Tools.js"
import { addContainer, makeWebRoot, type WebRoot } from "../support/Tree.js"
import { type Catalog, expectSameCatalog, mirrorTable } from "./support/Mirror.js"
import { makeKey, type RunningSshd, rrsyncPath, sshdPath, startSshd } from "./support/Sshd.js"

// rrsync by the path it was found at, else by name: with CI set, a missing one fails the run instead of skipping
const ready = haveTools(sshdPath, "ssh", "ssh-keygen", "rsync", rrsyncPath() ?? "rrsync")

describe.skipIf(!ready)("push mirrors over real ssh", async () => {
  let work: string
  let primary: WebRoot
  let sshd: RunningSshd
  let plainRoot: string
  let limitedRoot: string
  let config: string
  let knownHosts: string
  let plainKey: string
  let limitedKey: string

  const writeConfig = (extra = "") => {
    writeFileSync(
      config,
      [
        `img_dir = "${primary.images}"`,
        `streams_dir = "${primary.streams}"`,
        `state_dir = "${join(work, "state")}"`,
        ...mirrorTable("plain", { host: "127.0.0.1", user: sshd.user, port: sshd.port, key_path: plainKey, root_dir: plainRoot, known_hosts: knownHosts }),
        // the original's keys: remote as user@host
        ...mirrorTable("limited", { remote: `${sshd.user}@127.0.0.1`, port: sshd.port, key_path: limitedKey, root_dir: "/", known_hosts: knownHosts }),
        extra,
        ""
      ].join("\n")
    )
  }
  const cli = (...args: Array<string>) => runBinAsync(["--log-file", join(work, "cli.log"), "--config", config, ...args])
  const status = async () => JSON.parse((await cli("mirror", "status", "--json")).stdout) as { mirrors: Array<Record<string, unknown>> }

  beforeAll(async () => {
    work = tempDir("lis-mirror-")
    primary = makeWebRoot()
    plainRoot = join(work, "plain-www")
    limitedRoot = join(work, "limited-www")
    mkdirSync(plainRoot)
    mkdirSync(limitedRoot)
    const plain = makeKey(join(work, "plain_key"))
    const limited = makeKey(join(work, "limited_key"))
    plainKey = plain.path
    limitedKey = limited.path
    sshd = await startSshd(join(work, "sshd"), [plain.publicKey, `command="${rrsyncPath()} ${limitedRoot}",restrict ${limited.publicKey}`])
    knownHosts = join(work, "known_hosts")
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`)
    config = join(work, "config.toml")
    writeConfig()
    addContainer(primary, "debian/bookworm/amd64/default/20240101_10:00", "1")
    addContainer(primary, "debian/bookworm/amd64/default/20240102_10:00", "2")
    // never to leave the primary: a staging folder and a file beside the images
    addContainer(primary, "debian/bookworm/amd64/default/.20240103_10:00", "3")
    writeFileSync(join(primary.version("debian/bookworm/amd64/default/20240102_10:00"), "NOTES.txt"), "not published")
    const update = await cli("update")
    expect(update.code, update.stderr).toBe(0)
  }, 180_000)

  afterAll(async () => {
    await sshd?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
    if (primary) rmSync(primary.root, { recursive: true, force: true })
  })

  it("mirror push sends the catalog and its files to both mirrors, and only those", async () => {
    const pushed = await cli("mirror", "push")
    expect(pushed.code, `${pushed.stderr}\n${readFileSync(join(work, "cli.log"), "utf8")}`).toBe(0)
    expectSameCatalog(primary, plainRoot)
    expectSameCatalog(primary, limitedRoot)
    for (const root of [plainRoot, limitedRoot]) {
      // the catalog page goes with the catalog
      expect(readFileSync(join(root, "index.html"), "utf8"), root).toBe(readFileSync(join(primary.root, "index.html"), "utf8"))
      expect(existsSync(join(root, "images/debian/bookworm/amd64/default/.20240103_10:00"))).toBe(false)
      expect(existsSync(join(root, "images/debian/bookworm/amd64/default/20240102_10:00/NOTES.txt"))).toBe(false)
    }
    const mirrors = (await status()).mirrors
    expect(mirrors.map((m) => [m["name"], m["state"], m["lag_generations"], m["last_error"]])).toEqual([
      ["limited", "in-sync", 0, null],
      ["plain", "in-sync", 0, null]
    ])
  }, 180_000)

  it.skipIf(!haveTools("nginx", "openssl", "lxc", "incus"))("lxc and incus list the primary's images from each mirror's nginx, and the LXD daemon downloads one from each", async () => {
    // nginx workers run as www-data: the temp folders must let them through
    for (const dir of [work, primary.root, plainRoot, limitedRoot]) chmodSync(dir, 0o755)
    const tls = makeTestCert(work)
    const servers: Array<RunningNginx> = []
    try {
      for (const [name, root] of [["primary", primary.root], ["plain", plainRoot], ["limited", limitedRoot]] as const) {
        mkdirSync(join(work, `nginx-${name}`))
        const nginx = await startStaticNginx(join(work, `nginx-${name}`), root, tls)
        servers.push(nginx)
        for (const c of ["lxc", "incus"] as const) client(work, c).addRemote(name, nginx.url, tls.cert)
      }
      for (const c of ["lxc", "incus"] as const) {
        const listed = (remote: string) => client(work, c).listImages(remote).map((i) => `${i.fingerprint} ${i.type}`).sort()
        const want = listed("primary")
        expect(want.length, c).toBe(2)
        expect(listed("plain"), c).toEqual(want)
        expect(listed("limited"), c).toEqual(want)
      }
      if (haveTools("lxd") && haveRoot()) {
        // a daemon that reads the catalog from a mirror downloads the files from it too, and checks them
        const lxd = await startLxd(work)
        try {
          const lxc = client(work, "lxc")
          const newest = lxc.listImages("primary").find((i) => i.properties["serial"] === "20240102_10:00")!.fingerprint
          for (const mirror of ["plain", "limited"]) {
            lxc.run(["image", "copy", `${mirror}:debian/bookworm`, "local:"])
            expect(lxc.listImages("local").map((i) => i.fingerprint), mirror).toEqual([newest])
            lxc.run(["image", "delete", `local:${newest}`])
          }
        } finally {
          await lxd.stop()
        }
      }
    } finally {
      for (const nginx of servers) await nginx.stop()
    }
  }, 240_000)

  it("files leave a mirror only once they left both the catalog and the primary", async () => {
    // withdrawn from the catalog (as prune does first): the files stay on the primary for the grace period
    const version = "debian/bookworm/amd64/default/20240101_10:00"
    const images = JSON.parse(readFileSync(join(primary.streams, "images.json"), "utf8")) as Catalog
    for (const product of Object.values(images.products)) delete product.versions["20240101_10:00"]
    writeFileSync(join(primary.streams, "images.json"), `${JSON.stringify(images, null, 2)}\n`)
    // a file only the mirror has, gone from the primary long ago
    writeFileSync(join(plainRoot, "images", "debian", "stale.txt"), "left over")
    expect((await cli("mirror", "push", "plain")).code).toBe(0)
    expect(existsSync(join(plainRoot, "images", version, "rootfs.squashfs"))).toBe(true)
    expect(existsSync(join(plainRoot, "images", "debian", "stale.txt"))).toBe(false)
    expectSameCatalog(primary, plainRoot)
    // the grace period over, the primary deletes them: so does the next push
    rmSync(primary.version(version), { recursive: true })
    expect((await cli("mirror", "push", "plain")).code).toBe(0)
    expect(existsSync(join(plainRoot, "images", version))).toBe(false)
    expectSameCatalog(primary, plainRoot)
  }, 180_000)

  it("an unknown host key is refused unless the mirror accepts new ones", async () => {
    const fresh = join(work, "fresh_known_hosts")
    writeFileSync(config, readFileSync(config, "utf8").replaceAll(`known_hosts = "${knownHosts}"`, `known_hosts = "${fresh}"`))
    try {
      const refused = await cli("mirror", "push", "plain")
      expect(refused.code).toBe(1)
      const failing = (await status()).mirrors.find((m) => m["name"] === "plain")!
      expect(failing["state"]).toBe("failing")
      expect(String(failing["last_error"])).toMatch(/Host key verification failed/)
      writeFileSync(config, readFileSync(config, "utf8").replace(`known_hosts = "${fresh}"`, `known_hosts = "${fresh}"\naccept_new_host_key = true`))
      const accepted = await cli("mirror", "push", "plain")
      expect(accepted.code, accepted.stderr).toBe(0)
      expect(readFileSync(fresh, "utf8")).toContain("ssh-ed25519")
      expect((await status()).mirrors.find((m) => m["name"] === "plain")!["state"]).toBe("in-sync")
    } finally {
      writeConfig()
    }
  }, 180_000)

  it("mirror push names an unknown mirror and exits 2", async () => {
    const result = await cli("mirror", "push", "nowhere")
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("no mirror named nowhere (configured: limited, plain)")
  })
})
