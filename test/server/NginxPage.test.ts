/**
 * The catalog page behind nginx, with the site `init` writes: `update` writes index.html after the catalog,
 * with the commands for the configured public URL, and nginx serves it at / and /index.html (uncached), not
 * over plain HTTP, and nothing else new at the root. Real nginx on 127.0.0.1, no LXD.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { chmodSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { runBin } from "../support/Bin.js"
import { tempDir } from "../support/Images.js"
import { haveTools } from "../support/Tools.js"
import { addContainer, makeWebRoot, type WebRoot } from "../support/Tree.js"
import { freePort, get as httpsGet } from "../e2e/support/Net.js"
import { mainConfig, runNginx, type RunningNginx } from "../e2e/support/Nginx.js"

const ready = haveTools("nginx", "openssl", "mksquashfs", "tar", "xz")

describe.skipIf(!ready)("the catalog page behind the nginx site init writes", () => {
  let web: WebRoot
  let base: string
  let nginx: RunningNginx
  let port: number
  let httpPort: number
  const get = (p: string) =>
    httpsGet(`https://127.0.0.1:${port}`, p, join(base, "ssl", "lxd-image-server.crt")).then((r) => ({ ...r, body: r.body.toString() }))

  beforeAll(async () => {
    base = tempDir("lis-nginx-page-")
    chmodSync(base, 0o755) // nginx workers run as www-data
    web = makeWebRoot()
    chmodSync(web.root, 0o755)
    addContainer(web, "debian/bookworm/amd64/default/20240101_10:00", "one")
    port = await freePort()
    httpPort = await freePort()
    const config = join(base, "config.toml")
    const args = ["--log-file", join(base, "lis.log"), "--config", config]
    const init = runBin([...args, "init", "--root-dir", web.root, "--ssl-dir", join(base, "ssl"), "--nginx-dir", join(base, "nginx"), "--port", String(port), "--http-port", String(httpPort)])
    expect(init.code, init.stderr).toBe(0)
    // what the page says the server is: the public URL, as behind a proxy or a DNS name (init wrote the port and
    // the certificate's folder it was given)
    writeFileSync(config, `${readFileSync(config, "utf8")}\npublic_url = "https://images.example.org/lxd"\n`)
    const update = runBin([...args, "update", "--img-dir", web.images, "--streams-dir", web.streams])
    expect(update.code, update.stderr).toBe(0)
    const run = join(base, "run")
    nginx = await runNginx(run, mainConfig(run, `  include ${join(base, "nginx", "sites-enabled")}/*.conf;`), port)
  }, 60_000)

  afterAll(async () => {
    await nginx?.stop()
  })

  it("update wrote the page after the catalog, naming the public URL and pinning the self-signed certificate", () => {
    const page = readFileSync(join(web.root, "index.html"), "utf8")
    expect(page).toContain("lxc remote add myimages https://images.example.org/lxd --protocol simplestreams --public")
    expect(page).toContain("incus launch myimages:debian/bookworm/default")
    expect(page).toContain("cat &gt; ~/.config/incus/servercerts/myimages.crt &lt;&lt;&#39;EOF&#39;")
    expect(page).toContain(readFileSync(join(base, "ssl", "lxd-image-server.crt"), "utf8").trim())
  })

  it("nginx serves it at / and /index.html, uncached, and no other file of the root", async () => {
    const file = readFileSync(join(web.root, "index.html"), "utf8")
    for (const p of ["/", "/index.html"]) {
      const r = await get(p)
      expect([p, r.status, r.headers["content-type"], r.headers["cache-control"], r.body === file]).toEqual([p, 200, "text/html", "no-cache", true])
    }
    writeFileSync(join(web.root, "other.html"), "not the page")
    for (const p of ["/other.html", "/index.htm", "/images/"]) expect((await get(p)).status, p).toBeGreaterThanOrEqual(403)
    expect((await fetch(`http://127.0.0.1:${httpPort}/`)).status).toBe(404)
    expect((await fetch(`http://127.0.0.1:${httpPort}/index.html`)).status).toBe(404)
  })

  it("a bad public_url is one line naming the file and the key, and changes nothing", () => {
    const config = join(base, "bad.toml")
    writeFileSync(config, `public_url = "http://images.example.org"\n`)
    const before = readFileSync(join(web.root, "index.html"), "utf8")
    const r = runBin(["--log-file", join(base, "bad.log"), "--config", config, "update", "--img-dir", web.images, "--streams-dir", web.streams])
    // (the program's exit code for a bad config file, whatever it is, is not success)
    expect(r.code).not.toBe(0)
    expect(r.stderr.trim().split("\n")).toHaveLength(1)
    expect(r.stderr).toMatch(/bad\.toml, line 1: public_url: an https:\/\/ URL/)
    expect(readFileSync(join(web.root, "index.html"), "utf8")).toBe(before)
  })
})
