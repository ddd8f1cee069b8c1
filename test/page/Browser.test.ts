/**
 * The catalog page in a real browser: `serve` (the built command line) writes it with each generation and
 * serves it at `/`; headless Chromium loads it from there, and the test reads the rows it drew, searches and
 * sorts through the URL, checks that values from a hostile uploader stay text, and takes screenshots (the
 * README shows them: set LIS_PAGE_SCREENSHOTS to a folder to keep them). Everything stays on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { copyFileSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { binPath } from "../support/Bin.js"
import { dumpDom, screenshot } from "../support/Browser.js"
import { tempDir, writeMetadataTarball, writeSquashfs } from "../support/Images.js"
import { haveTools } from "../support/Tools.js"
import { addContainer, buildMixedTree, makeWebRoot, type WebRoot } from "../support/Tree.js"
import { waitFor } from "../support/WatchProcess.js"
import { freePort, get as httpsGet, waitForPort } from "../e2e/support/Net.js"

const ready = haveTools("chromium", "openssl", "mksquashfs", "tar", "xz")

const hostileYaml = [
  "architecture: x86_64",
  "creation_date: 1704103200",
  "properties:",
  `  os: "<script>document.title='pwned'</script>"`,
  "  release: r1",
  `  release_title: "<img src=x onerror=\\"document.title='pwned'\\">"`,
  "  variant: default",
  "templates: {}",
  ""
].join("\n")

interface Expected {
  readonly fingerprint: string
  readonly size: number
  readonly name: string
  readonly type: string
}

/** The image of a version folder, computed from its files (not by the code under test). */
const imageOf = (dir: string, meta: string, rootfs: string, name: string, type: string): Expected => ({
  fingerprint: createHash("sha256").update(readFileSync(join(dir, meta))).update(readFileSync(join(dir, rootfs))).digest("hex"),
  size: statSync(join(dir, meta)).size + statSync(join(dir, rootfs)).size,
  name,
  type
})

/** The rows the page drew, in order: fingerprint and the text of each cell. */
const rowsOf = (dom: string) =>
  [...dom.matchAll(/<tr class="image" data-fingerprint="([0-9a-f]{64})"[^>]*>(.*?)<\/tr>/g)].map((m) => ({
    fingerprint: m[1]!,
    cells: [...m[2]!.matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((c) => c[1]!.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").trim())
  }))

const statusOf = (dom: string) => /<p id="status"[^>]*>([^<]*)<\/p>/.exec(dom)?.[1]

describe.skipIf(!ready)("the catalog page, in headless Chromium, served by serve", () => {
  let web: WebRoot
  let base: string
  let port: number
  let child: ChildProcess
  let exited: Promise<unknown>
  let expected: Array<Expected>
  const url = (p = "/") => `https://127.0.0.1:${port}${p}`
  const page = () => (existsSync(join(web.root, "index.html")) ? readFileSync(join(web.root, "index.html"), "utf8") : "")

  const get = (p: string) => httpsGet(url(), p, join(base, "ssl", "lxd-image-server.crt")).then((r) => ({ ...r, body: r.body.toString() }))

  beforeAll(async () => {
    web = makeWebRoot()
    base = tempDir("lis-page-")
    buildMixedTree(web)
    const evil = web.version("evil/r1/amd64/default/20240104_10:00")
    writeMetadataTarball(join(evil, "lxd.tar.xz"), hostileYaml)
    writeSquashfs(join(evil, "rootfs.squashfs"), "evil")
    const deb = (v: string) => web.version(`debian/bookworm/amd64/default/${v}`)
    expected = [
      imageOf(deb("20240101_10:00"), "lxd.tar.xz", "rootfs.squashfs", "debian/bookworm/default", "container"),
      imageOf(deb("20240102_10:00"), "lxd.tar.xz", "rootfs.squashfs", "debian/bookworm/default", "container"),
      imageOf(deb("20240102_10:00"), "lxd.tar.xz", "disk.qcow2", "debian/bookworm/default", "virtual-machine"),
      imageOf(web.version("alpine/3.20/arm64/default/20240103_10:00"), "incus.tar.xz", "rootfs.tar.xz", "alpine/3.20/default", "container"),
      imageOf(web.version("fedora/40/amd64/cloud/20240104_10:00"), "lxd.tar.xz", "disk.qcow2", "fedora/40/cloud", "virtual-machine"),
      imageOf(evil, "lxd.tar.xz", "rootfs.squashfs", "evil/r1/default", "container")
    ]
    const config = join(base, "config.toml")
    writeFileSync(config, `state_dir = "${join(base, "state")}"\npidfile = "${join(base, "serve.pid")}"\nsettle = 0.5\n`)
    port = await freePort()
    child = spawn(process.execPath, [binPath, "--log-file", join(base, "serve.log"), "--config", config, "serve", "--root-dir", web.root,
      "--ssl-dir", join(base, "ssl"), "--host", "127.0.0.1", "--port", String(port), "--hostname", "images.test"], { stdio: "ignore" })
    exited = new Promise((r) => child.once("exit", r))
    await waitForPort(port, 30_000)
    await waitFor("the page with every image", () => expected.every((e) => page().includes(e.fingerprint)), 60_000)
  }, 120_000)

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill("SIGTERM")
    await exited
  })

  it("is served at / and /index.html, as HTML no cache keeps, and nothing else new is", async () => {
    for (const p of ["/", "/index.html", "/?q=debian"]) {
      const r = await get(p)
      expect([p, r.status, r.headers["content-type"], r.headers["cache-control"]]).toEqual([p, 200, "text/html; charset=utf-8", "no-cache"])
      expect(r.body).toBe(page())
    }
    for (const p of ["/index.htm", "/other.html", "/state/publisher.jsonl", "/ssl/lxd-image-server.key"]) expect((await get(p)).status, p).toBe(404)
    // the commands name this server, and pin its self-signed certificate
    expect(page()).toContain(`lxc remote add myimages https://images.test:${port} --protocol simplestreams --public`)
    expect(page()).toContain(`incus remote add myimages https://images.test:${port} --protocol simplestreams --public`)
    expect(page()).toContain(readFileSync(join(base, "ssl", "lxd-image-server.crt"), "utf8").trim())
  })

  it("draws one row per image, and keeps what an uploader wrote as text", async () => {
    const dom = await dumpDom(url("/"))
    const rows = rowsOf(dom)
    expect(rows.map((r) => r.fingerprint).sort()).toEqual(expected.map((e) => e.fingerprint).sort())
    expect(statusOf(dom)).toBe("6 of 6 images")
    for (const e of expected) {
      const row = rows.find((r) => r.fingerprint === e.fingerprint)!
      expect(row.cells[0]).toContain(e.name)
      expect(row.cells[3]).toBe(e.type)
      expect(row.cells[6]).toBe(e.fingerprint.slice(0, 12))
    }
    expect(rows.find((r) => r.fingerprint === expected[0]!.fingerprint)!.cells[4]).toBe("2024-01-01 10:00")
    // the hostile os and title, shown as text; no script of theirs ran
    expect(dom).toContain("&lt;script&gt;document.title='pwned'&lt;/script&gt;")
    expect(dom).toContain("&lt;img src=x onerror=")
    expect(dom).not.toContain("<img")
    expect(dom).toContain(`<title>Images at images.test:${port}</title>`)
    expect(dom).toMatch(/<body class="ready">/)
  }, 120_000)

  it("searches and sorts from the URL: ?q=debian&sort=size&order=desc", async () => {
    const dom = await dumpDom(url("/?q=debian&sort=size&order=desc"))
    // equal sizes: the newer version first (expected lists them oldest first)
    const debian = expected.filter((e) => e.name.startsWith("debian")).reverse().sort((a, b) => b.size - a.size)
    expect(rowsOf(dom).map((r) => r.fingerprint)).toEqual(debian.map((e) => e.fingerprint))
    expect(statusOf(dom)).toBe("3 of 6 images")
    expect(dom).toMatch(/<th data-sort="size" aria-sort="descending">/)
    // every term must match: the one debian VM
    const vm = rowsOf(await dumpDom(url("/?q=bookworm%20virtual")))
    expect(vm.map((r) => r.fingerprint)).toEqual([expected[2]!.fingerprint])
  }, 120_000)

  it("shows a version published meanwhile, and drops one removed", async () => {
    const added = addContainer(web, "debian/bookworm/amd64/default/20240105_10:00", "newer")
    const image = imageOf(added, "lxd.tar.xz", "rootfs.squashfs", "debian/bookworm/default", "container")
    await waitFor("the new version on the page", () => page().includes(image.fingerprint), 30_000)
    rmSync(web.version("alpine"), { recursive: true })
    await waitFor("alpine gone from the page", () => !page().includes(expected[3]!.fingerprint), 30_000)
    expect(rowsOf(await dumpDom(url("/"))).length).toBe(6)
  }, 120_000)

  it("takes screenshots on a desktop and on a phone", async () => {
    const dir = tempDir("lis-page-shots-")
    const shots = [["catalog-page.png", 1280, 900], ["catalog-page-phone.png", 390, 844]] as const
    for (const [name, width, height] of shots) {
      await screenshot(url("/"), join(dir, name), width, height)
      const png = readFileSync(join(dir, name))
      expect(png.subarray(1, 4).toString()).toBe("PNG")
      // IHDR: width and height, big-endian
      expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([width, height])
      const keep = process.env["LIS_PAGE_SCREENSHOTS"]
      if (keep) copyFileSync(join(dir, name), join(keep, name))
    }
  }, 180_000)
})
