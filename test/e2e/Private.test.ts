/**
 * Private servers end to end, with the real things: nginx with the site `init --private` writes (path, basic,
 * both) and `serve --private-access both`; the real `lxc` and `incus` list through each form and fail without
 * the secret; the LXD daemon launches a container from the image through each form on nginx and copies it
 * through each on `serve`. Requests without the secret are 404 (path) or 401 (basic), and nothing listens on
 * the plain-HTTP port. Everything stays on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { connect } from "node:net"
import { join } from "node:path"
import { binPath, runBinAsync } from "../support/Bin.js"
import { tempDir } from "../support/Images.js"
import { haveRoot, haveTools } from "../support/Tools.js"
import { makeWebRoot, type WebRoot } from "../support/Tree.js"
import { waitFor } from "../support/WatchProcess.js"
import { client, type ClientName, type RunningLxd, startLxd } from "./support/Clients.js"
import { busyboxPath, writeLaunchable } from "./support/Launchable.js"
import { freePort, get, waitForPort } from "./support/Net.js"
import { mainConfig, runNginx, type RunningNginx } from "./support/Nginx.js"

const ready = haveTools("nginx", "openssl", "lxc", "incus", "lxd", "mksquashfs", "tar", "xz", busyboxPath) && haveRoot()

const version = "busybox/1.36/amd64/default/20240101_10:00"
const imagePath = `/images/${version}/rootfs.squashfs`
const basic = (userPass: string) => `Basic ${Buffer.from(userPass).toString("base64")}`

/** Whether a TCP connection to the port is refused: nothing listens there. */
const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.destroy()
      resolve(false)
    })
    socket.once("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED"))
  })

/** A web root of its own with the launchable image. */
const launchableRoot = () => {
  const web = makeWebRoot()
  chmodSync(web.root, 0o755)
  writeLaunchable(web.version(version))
  return web
}

/** `update` with the config: the catalog, and the page with the URL the config's private settings give. */
const update = async (config: string, log: string, web: WebRoot) => {
  const out = await runBinAsync(["--log-file", log, "--config", config, "update", "--img-dir", web.images, "--streams-dir", web.streams])
  expect(out.code, out.stderr).toBe(0)
}

/** A base folder (config in etc/) that nginx's workers, as www-data, may walk. */
const serverBase = (prefix: string, configText: string) => {
  const base = tempDir(prefix)
  chmodSync(base, 0o755)
  mkdirSync(join(base, "etc"), { mode: 0o755 })
  writeFileSync(join(base, "etc", "config.toml"), configText)
  return { base, config: join(base, "etc", "config.toml"), etc: join(base, "etc"), ssl: join(base, "ssl"), cert: join(base, "ssl", "lxd-image-server.crt") }
}

describe.skipIf(!ready)("private servers with the real clients", () => {
  let work: string
  let lxd: RunningLxd
  const fingerprintOf = (web: WebRoot) =>
    createHash("sha256").update(readFileSync(join(web.version(version), "lxd.tar.xz"))).update(readFileSync(join(web.version(version), "rootfs.squashfs"))).digest("hex")

  beforeAll(async () => {
    work = tempDir("lis-private-e2e-")
    // the daemon's containers need x access on the way to their root
    chmodSync(work, 0o755)
    lxd = await startLxd(work)
    const lxc = client(work, "lxc")
    lxc.run(["storage", "create", "default", "dir"])
    lxc.run(["profile", "device", "add", "default", "root", "disk", "path=/", "pool=default"])
  }, 180_000)

  afterAll(async () => {
    await lxd?.stop()
  })

  /** Both clients list exactly the image, under its alias, through the remote. */
  const bothList = (remote: string, url: string, cert: string, fingerprint: string) => {
    for (const name of ["lxc", "incus"] as const) {
      const c = client(work, name)
      c.addRemote(remote, url, cert)
      const images = c.listImages(remote)
      expect(images.map((i) => i.fingerprint), `${name} ${remote}`).toEqual([fingerprint])
      expect((images[0]!.aliases ?? []).map((a) => a.name), `${name} ${remote}`).toContain("busybox/1.36")
    }
  }

  /** Neither client lists anything through the remote: the remote (added fine) fails when it is read. */
  const bothRefused = (remote: string, url: string, cert: string, status: RegExp) => {
    for (const name of ["lxc", "incus"] as ReadonlyArray<ClientName>) {
      const c = client(work, name)
      c.addRemote(remote, url, cert)
      expect(() => c.listImages(remote), `${name} ${remote}`).toThrow(status)
    }
  }

  /** The LXD daemon launches a container from the remote's image, which runs; then both are gone again. */
  const daemonLaunches = (remote: string, fingerprint: string) => {
    const lxc = client(work, "lxc")
    const name = `c-${remote}`
    lxc.run(["launch", `${remote}:busybox/1.36`, name])
    try {
      expect(lxc.run(["exec", name, "--", "/bin/busybox", "cat", "/proc/1/comm"]).trim()).toBe("init")
      const local = JSON.parse(lxc.run(["image", "list", "local:", "--format", "json"])) as ReadonlyArray<{ fingerprint: string }>
      expect(local.map((i) => i.fingerprint)).toEqual([fingerprint])
    } finally {
      lxc.run(["delete", "--force", name])
      lxc.run(["image", "delete", `local:${fingerprint}`])
    }
  }

  /** The LXD daemon copies the remote's image and accepts its fingerprint; then it is gone again. */
  const daemonCopies = (remote: string, fingerprint: string) => {
    const lxc = client(work, "lxc")
    lxc.run(["image", "copy", `${remote}:busybox/1.36`, "local:"])
    const local = JSON.parse(lxc.run(["image", "list", "local:", "--format", "json"])) as ReadonlyArray<{ fingerprint: string }>
    expect(local.map((i) => i.fingerprint)).toEqual([fingerprint])
    lxc.run(["image", "delete", `local:${fingerprint}`])
  }

  /** nginx with the site `init` wrote, its workers as www-data (they read the htpasswd file, 0640 root:www-data). */
  const startNginx = async (base: string, port: number) => {
    const run = join(base, "run")
    mkdirSync(run)
    return runNginx(run, `user www-data;\n${mainConfig(run, `  include ${join(base, "nginx", "sites-enabled")}/*.conf;`)}`, port)
  }

  const initPrivate = async (s: ReturnType<typeof serverBase>, web: WebRoot | undefined, port: number, ...flags: ReadonlyArray<string>) => {
    const out = await runBinAsync([
      "--log-file", join(s.base, "init.log"), "--config", s.config, "init", "--root-dir", web?.root ?? join(s.base, "www"), "--ssl-dir", s.ssl,
      "--nginx-dir", join(s.base, "nginx"), "--hostname", "images.test", "--port", String(port), ...flags
    ])
    expect(out.code, out.stderr).toBe(0)
    return out
  }

  describe("nginx, path: init --private", () => {
    let s: ReturnType<typeof serverBase>
    let web: WebRoot
    let nginx: RunningNginx
    let port: number
    let httpPort: number
    let token: string
    let printed: string
    beforeAll(async () => {
      httpPort = await freePort()
      port = await freePort()
      // a plain-HTTP port in the config: a private site must not listen on it
      s = serverBase("lis-private-path-", `private = true\nhostname = ["images.test"]\nport = ${port}\nhttp_port = ${httpPort}\n`)
      web = launchableRoot()
      printed = (await initPrivate(s, web, port, "--private")).stdout
      token = readFileSync(join(s.etc, "private-token"), "utf8").trim()
      // the config says private: update writes the catalog page with the URL and its token
      await update(s.config, join(s.base, "update.log"), web)
      nginx = await startNginx(s.base, port)
    }, 120_000)
    afterAll(async () => {
      await nginx?.stop()
    })

    it("prints the remote URL with the token, and answers nothing without it (404), everything with it", async () => {
      expect(printed).toContain(`lxc remote add myimages https://images.test:${port}/${token} --protocol simplestreams --public`)
      const ask = (p: string) => get(nginx.url, p, s.cert).then((r) => r.status)
      for (const p of ["/", "/index.html", "/streams/v1/index.json", "/streams/v1/images.json", imagePath, `/${token.slice(0, -1)}/streams/v1/index.json`, `/x${token}/`]) {
        expect([p, await ask(p)]).toEqual([p, 404])
      }
      for (const p of ["/", "/index.html", "/streams/v1/index.json", imagePath]) expect([p, await ask(`/${token}${p}`)]).toEqual([p, 200])
      expect(await ask(`/${token}/streams/.lxd-image-server.lock`)).toBe(404)
      const redirect = await get(nginx.url, `/${token}`, s.cert)
      expect([redirect.status, redirect.headers["location"]]).toEqual([301, expect.stringMatching(new RegExp(`/${token}/$`))])
      const page = (await get(nginx.url, `/${token}/`, s.cert)).body.toString()
      expect(page).toContain(`lxc remote add myimages https://images.test:${port}/${token} --protocol simplestreams --public`)
    })

    it("has no plain-HTTP server: nothing listens on the configured HTTP port", async () => {
      expect(readFileSync(join(s.base, "nginx", "sites-available", "lxd-image-server.conf"), "utf8")).not.toContain(`listen ${httpPort}`)
      expect(await refused(httpPort)).toBe(true)
    })

    it("lxc and incus list through the token URL, and fail without it or with another", () => {
      bothList("np", `https://127.0.0.1:${port}/${token}`, s.cert, fingerprintOf(web))
      bothRefused("np-none", `https://127.0.0.1:${port}`, s.cert, /404/)
      // another token of the same length: its last character changed (an "x" in place of an "x" would be the same
      // token, in 1 run of 64)
      const other = `${token.slice(0, -1)}${token.endsWith("x") ? "y" : "x"}`
      bothRefused("np-other", `https://127.0.0.1:${port}/${other}`, s.cert, /404/)
    }, 120_000)

    it("the LXD daemon launches a container from the image through the token URL", () => {
      daemonLaunches("np", fingerprintOf(web))
      // the URL names a port, so the daemon's first http:// try for each file went to it, in clear
      expect(readFileSync(join(nginx.dir, "error.log"), "utf8")).toContain("client sent plain HTTP request to HTTPS port")
    }, 180_000)
  })

  describe("nginx, basic: init --private-access basic", () => {
    let s: ReturnType<typeof serverBase>
    let web: WebRoot
    let nginx: RunningNginx
    let port: number
    let kept: string
    beforeAll(async () => {
      port = await freePort()
      s = serverBase("lis-private-basic-", `private = true\nprivate_access = "basic"\nhostname = ["images.test"]\n`)
      web = launchableRoot()
      await initPrivate(s, web, port)
      await update(s.config, join(s.base, "update.log"), web)
      kept = readFileSync(join(s.etc, "htpasswd.password"), "utf8").trim()
      nginx = await startNginx(s.base, port)
    }, 120_000)
    afterAll(async () => {
      await nginx?.stop()
    })

    it("answers 401 with a challenge without the password or with a wrong one, the files with it; the page holds no password", async () => {
      for (const p of ["/", "/index.html", "/streams/v1/index.json", imagePath]) {
        const none = await get(nginx.url, p, s.cert)
        expect([p, none.status, none.headers["www-authenticate"]]).toEqual([p, 401, 'Basic realm="lxd-image-server"'])
        expect([p, (await get(nginx.url, p, s.cert, { authorization: basic("images:wrong") })).status]).toEqual([p, 401])
        expect([p, (await get(nginx.url, p, s.cert, { authorization: basic(kept) })).status]).toEqual([p, 200])
      }
      const page = (await get(nginx.url, "/", s.cert, { authorization: basic(kept) })).body.toString()
      expect(page).toContain("https://USER:PASSWORD@images.test")
      expect(page).not.toContain(kept.split(":")[1])
      expect(readFileSync(join(web.root, "index.html"), "utf8")).not.toContain(kept.split(":")[1])
    })

    it("lxc and incus list with the user and password in the URL, and fail without them or with a wrong password", () => {
      bothList("nb", `https://${kept}@127.0.0.1:${port}`, s.cert, fingerprintOf(web))
      bothRefused("nb-none", `https://127.0.0.1:${port}`, s.cert, /401/)
      bothRefused("nb-wrong", `https://images:wrong@127.0.0.1:${port}`, s.cert, /401/)
    }, 120_000)

    it("the LXD daemon launches a container from the image with the user and password", () => {
      daemonLaunches("nb", fingerprintOf(web))
    }, 180_000)
  })

  describe("nginx, both: init --private-access both", () => {
    let s: ReturnType<typeof serverBase>
    let nginx: RunningNginx
    let token: string
    let kept: string
    beforeAll(async () => {
      const port = await freePort()
      s = serverBase("lis-private-both-", `private = true\nprivate_access = "both"\n`)
      const web = launchableRoot()
      await initPrivate(s, web, port)
      await update(s.config, join(s.base, "update.log"), web)
      token = readFileSync(join(s.etc, "private-token"), "utf8").trim()
      kept = readFileSync(join(s.etc, "htpasswd.password"), "utf8").trim()
      nginx = await startNginx(s.base, port)
    }, 120_000)
    afterAll(async () => {
      await nginx?.stop()
    })

    it("the token needs no password; without it, 401 unless the password comes", async () => {
      for (const p of ["/", "/streams/v1/index.json", imagePath]) {
        expect([p, (await get(nginx.url, `/${token}${p}`, s.cert)).status]).toEqual([p, 200])
        expect([p, (await get(nginx.url, p, s.cert)).status]).toEqual([p, 401])
        // a path nothing is at (another token) is 404 before any password is asked for, as on a public site
        expect([p, (await get(nginx.url, `/${token.slice(1)}${p}`, s.cert)).status]).toEqual([p, 404])
        expect([p, (await get(nginx.url, p, s.cert, { authorization: basic(kept) })).status]).toEqual([p, 200])
      }
    })
  })

  describe("serve --private-access both", () => {
    let s: ReturnType<typeof serverBase>
    let web: WebRoot
    let port: number
    let httpPort: number
    let token: string
    let kept: string
    let stdout = ""
    let child: ChildProcess
    beforeAll(async () => {
      port = await freePort()
      httpPort = await freePort()
      s = serverBase("lis-private-serve-", "")
      writeFileSync(s.config, `state_dir = "${join(s.base, "state")}"\npidfile = "${join(s.base, "serve.pid")}"\nsettle = 0.5\nhttp_port = ${httpPort}\n`)
      web = launchableRoot()
      child = spawn(process.execPath, [binPath, "--log-file", join(s.base, "serve.log"), "--config", s.config, "serve", "--private-access", "both", "--root-dir", web.root, "--ssl-dir", s.ssl, "--hostname", "localhost", "--host", "127.0.0.1", "--port", String(port)], { stdio: ["ignore", "pipe", "ignore"] })
      child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()))
      await waitForPort(port, 30_000)
      await waitFor("serve's catalog and page", () => {
        try {
          return readFileSync(join(web.root, "index.html"), "utf8").includes("busybox")
        } catch {
          return false
        }
      })
      token = readFileSync(join(s.etc, "private-token"), "utf8").trim()
      kept = readFileSync(join(s.etc, "htpasswd.password"), "utf8").trim()
    }, 60_000)
    afterAll(async () => {
      if (child && child.exitCode === null) {
        const exited = new Promise<void>((r) => child.once("exit", () => r()))
        child.kill("SIGTERM")
        await exited
      }
    })

    it("made the secrets beside its config file and printed both URLs", () => {
      expect(stdout).toContain(`lxc remote add myimages https://localhost:${port}/${token} --protocol simplestreams --public`)
      expect(stdout).toContain(`incus remote add myimages https://${kept}@localhost:${port} --protocol simplestreams --public`)
    })

    it("answers 401 with a challenge without a secret, serves with either, and lets nothing out of the web root", async () => {
      const url = `https://127.0.0.1:${port}`
      for (const p of ["/", "/index.html", "/streams/v1/index.json", imagePath]) {
        const none = await get(url, p, s.cert)
        expect([p, none.status, none.headers["www-authenticate"]]).toEqual([p, 401, 'Basic realm="lxd-image-server", charset="UTF-8"'])
        expect([p, (await get(url, p, s.cert, { authorization: basic("images:wrong") })).status]).toEqual([p, 401])
        expect([p, (await get(url, p, s.cert, { authorization: basic(kept) })).status]).toEqual([p, 200])
        expect([p, (await get(url, `/${token}${p}`, s.cert)).status]).toEqual([p, 200])
      }
      for (const p of [`/${token}/../../etc/passwd`, `/${token}/%2e%2e/%2e%2e/etc/passwd`, `/${token}/images/`, `/${token}/streams/.lxd-image-server.lock`]) {
        const r = await get(url, p, s.cert)
        expect([p, r.status]).toEqual([p, 404])
        expect(r.body.toString()).not.toContain("root:")
      }
      // the page: with basic on, neither the token nor a password on it
      const page = (await get(url, `/${token}/`, s.cert)).body.toString()
      expect(page).toContain(`https://USER:PASSWORD@localhost:${port}`)
      expect(page).not.toContain(token)
      expect(page).not.toContain(kept.split(":")[1])
    })

    it("nothing listens on the plain-HTTP port", async () => {
      expect(await refused(httpPort)).toBe(true)
    })

    it("lxc and incus list through either secret, and fail without one", () => {
      const fingerprint = fingerprintOf(web)
      bothList("sp", `https://127.0.0.1:${port}/${token}`, s.cert, fingerprint)
      bothList("sb", `https://${kept}@127.0.0.1:${port}`, s.cert, fingerprint)
      bothRefused("s-none", `https://127.0.0.1:${port}`, s.cert, /401/)
      bothRefused("s-wrong", `https://images:wrong@127.0.0.1:${port}`, s.cert, /401/)
    }, 120_000)

    it("the LXD daemon copies the image through either secret", () => {
      daemonCopies("sp", fingerprintOf(web))
      daemonCopies("sb", fingerprintOf(web))
    }, 180_000)
  })
})
