/** The catalog page's renderer with plain values: what each image row holds, escaping, the commands, and re-rendering only what changed. */
import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import { catalogPage, clientsOf, clientSetup, PageFragments, pageProduct, type PageSite } from "../../src/page/CatalogPage.js"
import { fingerprintOf, isSelfSigned } from "../../src/server/Tls.js"
import type { Images, Product } from "../../src/simplestreams/Streams.js"
import { product, sha } from "../support/Products.js"
import { tempDir } from "../support/Images.js"
import { haveTools } from "../support/Tools.js"
import { join } from "node:path"
import { readFileSync } from "node:fs"

const site: PageSite = { url: "https://images.test:8444", remote: "myimages", clients: ["lxc", "incus"] }
const catalog = (products: Record<string, Product>): Images => ({ content_id: "images", datatype: "image-downloads", format: "products:1.0", products })

/** The page's data, as its script reads it. */
const dataOf = (html: string) => {
  const m = /<script type="application\/json" id="catalog">([^<]*)<\/script>/.exec(html)
  expect(m, "the inline data").not.toBeNull()
  return JSON.parse(m![1]!) as { remote: string; clients: Array<string>; products: Array<ReturnType<typeof pageProduct>> }
}

describe("the catalog page", () => {
  it("lists one image per rootfs and fingerprint, with the size clients download, and marks the newest of each type", () => {
    const p = pageProduct("debian:bookworm:amd64:default", product())
    expect(p.aliases).toEqual(["debian/bookworm/default", "debian/bookworm"])
    expect(p.images).toEqual([
      { v: "20240101_10:00", t: "container", s: 1100, f: sha("a") },
      // two metadata files: LXD and Incus see different fingerprints, each said
      { v: "20240102_10:00", t: "container", s: 2200, f: sha("b"), c: ["lxc"], n: 1 },
      { v: "20240102_10:00", t: "container", s: 2300, f: sha("d"), c: ["incus"], n: 1 },
      { v: "20240102_10:00", t: "virtual-machine", s: 5200, f: sha("c"), c: ["lxc"], n: 1 },
      { v: "20240102_10:00", t: "virtual-machine", s: 5300, f: sha("e"), c: ["incus"], n: 1 }
    ])
  })

  it("carries every value as text: a <script> in an alias or a title stays data, never markup", () => {
    const hostile = product({ aliases: "<script>alert(1)</script>,a&b", release_title: "</script><img src=x onerror=alert(2)>", os: "\u2028\"'" })
    const html = catalogPage({ ...site, url: "https://x.test/<b>" }, catalog({ "evil:r:amd64:default": hostile }))
    // the page's own two scripts, and nothing else that opens a tag from the values
    expect(html.match(/<script/g)).toHaveLength(2)
    expect(html).not.toContain("<img")
    expect(html).not.toContain("<b>")
    expect(html).toContain("https://x.test/&lt;b&gt;")
    const data = dataOf(html)
    expect(data.products[0]!.aliases).toEqual(["<script>alert(1)</script>", "a&b"])
    expect(data.products[0]!.title).toBe("</script><img src=x onerror=alert(2)>")
    expect(data.products[0]!.os).toBe("\u2028\"'")
  })

  it("allows only its own script and style, by hash", () => {
    const html = catalogPage(site, catalog({ "debian:bookworm:amd64:default": product() }))
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)![1]!
    const hash = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)![1]!
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!
    expect(csp).toContain(`script-src ${hash(script)};`)
    expect(csp).toContain(`style-src ${hash(style)};`)
    expect(csp).toMatch(/^default-src 'none';/)
  })

  it("gives the exact commands of each client the catalog serves, with a launch example", () => {
    const html = catalogPage(site, catalog({ "debian:bookworm:amd64:default": product() }))
    expect(html).toContain("lxc remote add myimages https://images.test:8444 --protocol simplestreams --public")
    expect(html).toContain("incus remote add myimages https://images.test:8444 --protocol simplestreams --public")
    expect(html).toContain("lxc launch myimages:debian/bookworm/default")
    expect(html).not.toContain("servercerts")
    const lxdOnly = catalogPage({ ...site, clients: clientsOf("lxd") }, catalog({}))
    expect(lxdOnly).toContain("lxc remote add")
    expect(lxdOnly).not.toContain("incus remote add")
    expect(clientsOf("both")).toEqual(["lxc", "incus"])
    expect(clientsOf("incus")).toEqual(["incus"])
    // a URL a shell would split is quoted
    expect(clientSetup({ ...site, url: "https://h/a b" }, "lxc")).toContain("lxc remote add myimages 'https://h/a b' --protocol simplestreams --public")
    // no hard-coded server: the page names the one it is given
    expect(html).toContain("<title>Images at images.test:8444</title>")
  })

  it.skipIf(!haveTools("openssl"))("shows how to pin a self-signed certificate, with its fingerprint", () => {
    const dir = tempDir("lis-page-cert-")
    // a leaf as init makes it: no keyCertSign, yet self-signed
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=localhost",
      "-addext", "basicConstraints=critical,CA:FALSE", "-addext", "keyUsage=critical,digitalSignature", "-keyout", join(dir, "k"), "-out", join(dir, "c")], { stdio: "ignore" })
    const pem = readFileSync(join(dir, "c"), "utf8")
    expect(isSelfSigned(pem)).toBe(true)
    // a leaf a CA signed is not pinned
    execFileSync("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=leaf", "-keyout", join(dir, "lk"), "-out", join(dir, "csr")], { stdio: "ignore" })
    execFileSync("openssl", ["x509", "-req", "-in", join(dir, "csr"), "-CA", join(dir, "c"), "-CAkey", join(dir, "k"), "-days", "1", "-out", join(dir, "leaf")], { stdio: "ignore" })
    expect(isSelfSigned(readFileSync(join(dir, "leaf"), "utf8"))).toBe(false)
    expect(isSelfSigned("not a certificate")).toBe(false)
    const setup = clientSetup({ ...site, selfSignedPem: pem }, "incus")
    expect(setup.slice(0, 2)).toEqual(["mkdir -p ~/.config/incus/servercerts", "cat > ~/.config/incus/servercerts/myimages.crt <<'EOF'"])
    expect(setup.join("\n")).toContain(`${pem.trim()}\nEOF\nincus remote add myimages`)
    const html = catalogPage({ ...site, selfSignedPem: pem }, catalog({}))
    expect(html).toContain(fingerprintOf(pem))
    expect(html).toContain("~/.config/lxc/servercerts/myimages.crt")
  })

  it("renders again only the products whose piece changed", () => {
    const fragments = new PageFragments()
    const read: Array<string> = []
    const productOf = (key: string, piece: { product: Product }) => (read.push(key), piece.product)
    const a = { product: product() }
    const b = { product: product({ aliases: "alpine/3.20/default" }) }
    const first = fragments.render(site, [["a", a], ["b", b]], productOf).toString()
    expect(read).toEqual(["a", "b"])
    const b2 = { product: product({ aliases: "alpine/3.21/default" }) }
    const second = fragments.render(site, [["a", a], ["b", b2]], productOf).toString()
    // the same page, whichever way it was made
    expect(second).toBe(catalogPage(site, catalog({ a: a.product, b: b2.product })))
    expect(read).toEqual(["a", "b", "b"])
    expect(dataOf(first).products.map((p) => p.aliases[0])).toEqual(["debian/bookworm/default", "alpine/3.20/default"])
    expect(dataOf(second).products.map((p) => p.aliases[0])).toEqual(["debian/bookworm/default", "alpine/3.21/default"])
    // a product gone is gone from the page
    expect(dataOf(fragments.render(site, [["b", b2]], productOf).toString()).products).toHaveLength(1)
  })
})
