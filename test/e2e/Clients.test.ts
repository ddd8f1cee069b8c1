/**
 * End to end, with the real clients: `lxc` (LXD 5.0.2) and `incus` (6.0.4) list a tree of real images with
 * the right fingerprints and types, and a real LXD daemon downloads images and checks their fingerprints,
 * served three ways: by nginx after `update`, by nginx with the site `init` writes, and by `serve`.
 * Everything stays on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { execFileSync, spawn, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { binPath, runBin } from "../support/Bin.js"
import { tempDir } from "../support/Images.js"
import { haveRoot, haveTools } from "../support/Tools.js"
import { buildMixedTree, makeWebRoot, type WebRoot } from "../support/Tree.js"
import { waitFor } from "../support/WatchProcess.js"
import { client, type ListedImage, type RunningLxd, startLxd } from "./support/Clients.js"
import { freePort, get, waitForPort } from "./support/Net.js"
import { mainConfig, runNginx, type RunningNginx, startStaticNginx } from "./support/Nginx.js"
import { makeTestCert } from "./support/Tls.js"

const ready = haveTools("nginx", "openssl", "lxc", "incus", "lxd", "mksquashfs", "tar", "xz") && haveRoot()

const combinedOf = (dir: string, meta: string, rootfs: string) =>
  createHash("sha256").update(readFileSync(join(dir, meta))).update(readFileSync(join(dir, rootfs))).digest("hex")

const tlsAccepted = (port: number, version: "-tls1_1" | "-tls1_2" | "-tls1_3") =>
  spawnSync("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, version], { input: "", timeout: 10_000 }).status === 0

describe.skipIf(!ready)("the real clients", () => {
  let work: string
  let web: WebRoot
  let lxd: RunningLxd
  let expected: Map<string, { type: string; ftype: string; version: string; architecture: string }>
  const byVersion = (version: string, type: string) => [...expected].find(([, v]) => v.version === version && v.type === type)![0]

  beforeAll(async () => {
    work = tempDir("lis-e2e-")
    chmodSync(work, 0o755) // nginx workers run as www-data
    web = makeWebRoot()
    chmodSync(web.root, 0o755)
    buildMixedTree(web)
    const update = runBin(["--log-file", join(work, "update.log"), "update", "--img-dir", web.images, "--streams-dir", web.streams])
    expect(update.code, update.stderr).toBe(0)
    const deb = (v: string) => web.version(`debian/bookworm/amd64/default/${v}`)
    expected = new Map([
      [combinedOf(deb("20240101_10:00"), "lxd.tar.xz", "rootfs.squashfs"), { type: "container", ftype: "squashfs", version: "20240101_10:00", architecture: "x86_64" }],
      [combinedOf(deb("20240102_10:00"), "lxd.tar.xz", "rootfs.squashfs"), { type: "container", ftype: "squashfs", version: "20240102_10:00", architecture: "x86_64" }],
      [combinedOf(deb("20240102_10:00"), "lxd.tar.xz", "disk.qcow2"), { type: "virtual-machine", ftype: "disk-kvm.img", version: "20240102_10:00", architecture: "x86_64" }],
      [combinedOf(web.version("alpine/3.20/arm64/default/20240103_10:00"), "incus.tar.xz", "rootfs.tar.xz"), { type: "container", ftype: "root.tar.xz", version: "20240103_10:00", architecture: "aarch64" }],
      [combinedOf(web.version("fedora/40/amd64/cloud/20240104_10:00"), "lxd.tar.xz", "disk.qcow2"), { type: "virtual-machine", ftype: "disk-kvm.img", version: "20240104_10:00", architecture: "x86_64" }]
    ])
    lxd = await startLxd(work)
  }, 180_000)

  afterAll(async () => {
    await lxd?.stop()
  })

  const check = (images: ReadonlyArray<ListedImage>) => {
    // every image is there, and nothing else: no junk, no duplicate
    expect(images.map((i) => i.fingerprint).sort()).toEqual([...expected.keys()].sort())
    for (const image of images) {
      const want = expected.get(image.fingerprint)!
      expect({ type: image.type, ftype: image.properties["type"], serial: image.properties["serial"], architecture: image.architecture })
        .toEqual({ type: want.type, ftype: want.ftype, serial: want.version, architecture: want.architecture })
    }
    // debian/bookworm names the newest container and VM, never the older one
    const named = (alias: string, type: string) => images.filter((i) => i.type === type && (i.aliases ?? []).some((a) => a.name === alias))
    expect(named("debian/bookworm", "container").map((i) => i.properties["serial"])).toEqual(["20240102_10:00"])
    expect(named("debian/bookworm", "virtual-machine").map((i) => i.properties["serial"])).toEqual(["20240102_10:00"])
    expect(named("debian/bookworm/default", "container").map((i) => i.properties["serial"])).toEqual(["20240102_10:00"])
    expect(named("fedora/40/cloud", "virtual-machine")).toHaveLength(1)
  }

  /** Has the daemon copy an image from the remote, then checks the fingerprint it stored, and forgets it again. */
  const daemonCopies = (remote: string, alias: string, fingerprint: string, vm = false) => {
    const lxc = client(work, "lxc")
    lxc.run(["image", "copy", `${remote}:${alias}`, "local:", ...(vm ? ["--vm"] : [])])
    const local = JSON.parse(lxc.run(["image", "list", "local:", "--format", "json"])) as ReadonlyArray<ListedImage>
    expect(local.map((i) => i.fingerprint)).toEqual([fingerprint])
    lxc.run(["image", "delete", `local:${fingerprint}`])
  }

  describe("update, served by nginx", () => {
    let nginx: RunningNginx
    let cert: string
    beforeAll(async () => {
      mkdirSync(join(work, "nginx"))
      const tls = makeTestCert(work)
      cert = tls.cert
      nginx = await startStaticNginx(join(work, "nginx"), web.root, tls)
      for (const name of ["lxc", "incus"] as const) client(work, name).addRemote("plain", nginx.url, tls.cert)
    })
    afterAll(async () => {
      await nginx?.stop()
    })

    it("lxc image list shows every image with its fingerprint and type", () => check(client(work, "lxc").listImages("plain")))
    it("incus image list shows every image with its fingerprint and type", () => check(client(work, "incus").listImages("plain")))
    it("the LXD daemon downloads debian/bookworm and the VM, and accepts their fingerprints", () => {
      daemonCopies("plain", "debian/bookworm", byVersion("20240102_10:00", "container"))
      daemonCopies("plain", "fedora/40/cloud", byVersion("20240104_10:00", "virtual-machine"), true)
      expect(cert).toBeTruthy()
    }, 120_000)
  })

  describe("init, then nginx with the site it wrote", () => {
    let nginx: RunningNginx
    let dirs: { config: string; ssl: string; nginx: string }
    let port: number
    let httpPort: number
    const init = () =>
      runBin(["--log-file", join(work, "init.log"), "--config", dirs.config, "init", "--root-dir", web.root, "--ssl-dir", dirs.ssl, "--nginx-dir", dirs.nginx, "--hostname", "images.test", "--port", String(port), "--http-port", String(httpPort)])
    beforeAll(async () => {
      const base = tempDir("lis-init-")
      chmodSync(base, 0o755)
      dirs = { config: join(base, "etc", "config.toml"), ssl: join(base, "ssl"), nginx: join(base, "nginx") }
      port = await freePort()
      httpPort = await freePort()
      const first = init()
      expect(first.code, first.stderr).toBe(0)
      expect(first.stdout).toMatch(/SHA-256 fingerprint: ([0-9A-F]{2}:){31}[0-9A-F]{2}/)
      expect(first.stdout).toContain(`~/.config/lxc/servercerts/`)
      expect(first.stdout).toContain(`~/.config/incus/servercerts/`)
      const run = join(base, "run")
      mkdirSync(run)
      nginx = await runNginx(run, mainConfig(run, `  include ${join(dirs.nginx, "sites-enabled")}/*.conf;`), port)
      for (const name of ["lxc", "incus"] as const) client(work, name).addRemote("site", `https://127.0.0.1:${port}`, join(dirs.ssl, "lxd-image-server.crt"))
    })
    afterAll(async () => {
      await nginx?.stop()
    })

    it("made a certificate that is a leaf with the right names and a private key", () => {
      const text = execFileSync("openssl", ["x509", "-in", join(dirs.ssl, "lxd-image-server.crt"), "-noout", "-text"]).toString()
      expect(text).toContain("CA:FALSE")
      expect(text).toMatch(/DNS:images\.test.*DNS:localhost.*IP Address:127\.0\.0\.1/s)
      expect(statSync(join(dirs.ssl, "lxd-image-server.key")).mode & 0o777).toBe(0o600)
      expect(readFileSync(dirs.config, "utf8")).toMatch(/^# compat = "both"/m)
    })

    it("nginx -t passes with the site, and both clients read the tree through it", () => {
      execFileSync("nginx", ["-p", nginx.dir, "-c", join(nginx.dir, "nginx.conf"), "-e", join(nginx.dir, "error.log"), "-t"], { stdio: "pipe" })
      check(client(work, "lxc").listImages("site"))
      check(client(work, "incus").listImages("site"))
    })

    it("lists no folder, hides dotfiles, serves images/ only over plain HTTP, and refuses TLS 1.1", async () => {
      const ca = join(dirs.ssl, "lxd-image-server.crt")
      expect((await get(`https://127.0.0.1:${port}`, "/images/", ca)).status).toBeGreaterThanOrEqual(403)
      expect((await get(`https://127.0.0.1:${port}`, "/images/debian/", ca)).status).toBeGreaterThanOrEqual(403)
      expect((await get(`https://127.0.0.1:${port}`, "/streams/.lxd-image-server.lock", ca)).status).toBe(404)
      const index = await get(`https://127.0.0.1:${port}`, "/streams/v1/index.json", ca)
      expect(index.status).toBe(200)
      expect(index.headers["cache-control"]).toBe("no-cache")
      // the catalog page update wrote, at / only over HTTPS
      const page = await get(`https://127.0.0.1:${port}`, "/", ca)
      expect([page.status, page.headers["content-type"], page.headers["cache-control"]]).toEqual([200, "text/html", "no-cache"])
      expect(page.body.toString()).toContain("debian/bookworm/default")
      expect((await get(`https://127.0.0.1:${port}`, "/other.html", ca)).status).toBe(404)
      const plain = (p: string) => fetch(`http://127.0.0.1:${httpPort}${p}`).then((r) => r.status)
      expect(await plain("/images/fedora/40/amd64/cloud/20240104_10:00/disk.qcow2")).toBe(200)
      expect(await plain("/streams/v1/index.json")).toBe(404)
      expect(await plain("/")).toBe(404)
      expect(tlsAccepted(port, "-tls1_1")).toBe(false)
      expect(tlsAccepted(port, "-tls1_2")).toBe(true)
      expect(tlsAccepted(port, "-tls1_3")).toBe(true)
    })

    it("a second init changes nothing, and says so", () => {
      const snapshot = () =>
        [dirs.ssl, join(dirs.nginx, "sites-available"), join(dirs.config, "..")].flatMap((d) =>
          readdirSync(d).map((f) => `${f}:${statSync(join(d, f)).mtimeMs}:${createHash("sha256").update(readFileSync(join(d, f))).digest("hex")}`)
        )
      const before = snapshot()
      const second = init()
      expect(second.code, second.stderr).toBe(0)
      expect(snapshot()).toEqual(before)
      for (const what of ["kept the existing config file", "kept the existing certificate", "kept the existing nginx site"]) expect(second.stderr).toContain(what)
    })
  })

  describe("serve: the one-command server", () => {
    let port: number
    let ssl: string
    let stop: () => Promise<void>
    beforeAll(async () => {
      const base = tempDir("lis-serve-")
      ssl = join(base, "ssl")
      const config = join(base, "config.toml")
      writeFileSync(config, `state_dir = "${join(base, "state")}"\npidfile = "${join(base, "serve.pid")}"\nsettle = 0.5\n`)
      port = await freePort()
      const child = spawn(process.execPath, [binPath, "--log-file", join(base, "serve.log"), "--config", config, "serve", "--root-dir", web.root, "--ssl-dir", ssl, "--host", "127.0.0.1", "--port", String(port)], { stdio: "ignore" })
      const exited = new Promise<void>((r) => child.once("exit", () => r()))
      stop = async () => {
        child.kill("SIGTERM")
        await exited
      }
      await waitForPort(port)
      await waitFor("serve's catalog", () => readFileSync(join(base, "serve.log"), "utf8").includes("reconciled") || readFileSync(join(base, "serve.log"), "utf8").includes("watching"))
      for (const name of ["lxc", "incus"] as const) client(work, name).addRemote("serve", `https://127.0.0.1:${port}`, join(ssl, "lxd-image-server.crt"))
    }, 60_000)
    afterAll(async () => {
      await stop?.()
    })

    it("both clients list every image, and the LXD daemon copies one", () => {
      check(client(work, "lxc").listImages("serve"))
      check(client(work, "incus").listImages("serve"))
      daemonCopies("serve", "alpine/3.20", byVersion("20240103_10:00", "container"))
    }, 120_000)

    it("refuses TLS 1.1, traversal and listings, and answers a Range request with 206", async () => {
      const ca = join(ssl, "lxd-image-server.crt")
      const url = `https://127.0.0.1:${port}`
      expect(tlsAccepted(port, "-tls1_1")).toBe(false)
      expect(tlsAccepted(port, "-tls1_2")).toBe(true)
      for (const p of ["/../../../etc/passwd", "/images/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/images/", "/images/debian", "/other.html", "/streams/.lxd-image-server.lock"]) {
        const r = await get(url, p, ca)
        expect(r.status, p).toBe(404)
        expect(r.body.toString()).not.toContain("root:")
      }
      const file = "/images/debian/bookworm/amd64/default/20240102_10:00/rootfs.squashfs"
      const whole = readFileSync(web.version("debian/bookworm/amd64/default/20240102_10:00/rootfs.squashfs"))
      const part = await get(url, file, ca, { range: "bytes=10-19" })
      expect(part.status).toBe(206)
      expect(part.headers["content-range"]).toBe(`bytes 10-19/${whole.length}`)
      expect(part.body).toEqual(whole.subarray(10, 20))
      const full = await get(url, file, ca)
      expect(full.status).toBe(200)
      expect(full.headers["content-length"]).toBe(String(whole.length))
      expect(full.body.equals(whole)).toBe(true)
      const index = await get(url, "/streams/v1/index.json", ca)
      expect([index.status, index.headers["content-type"], index.headers["cache-control"]]).toEqual([200, "application/json", "no-cache"])
    })
  })
})
