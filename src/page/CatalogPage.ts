/**
 * The catalog page (`index.html` at the web root), pure: the catalog in, HTML out. Every product with its
 * images (one per rootfs of a version: type, size, version, fingerprint, aliases), searchable and sortable in
 * the browser with no fetch: the data travels inline as JSON in a `<script type="application/json">` and a
 * small inline script draws the table. Every value an uploader chose (metadata.yaml's os and release_title,
 * folder names) reaches the page escaped: `<` never leaves the JSON as `<`, and the script writes text with
 * `textContent`, never as markup. A Content-Security-Policy naming the hashes of the page's own script and
 * style is a second line: no other script runs even if something slipped through.
 *
 * Rendering is split so a publish re-renders only the products it touched: `pageProduct` and
 * `productFragment` per product, `renderPage` joins the fragments.
 */
import { createHash } from "node:crypto"
import { type Client, clientConfigDirs, fingerprintOf, pinnedCertPath, remoteAddCommand } from "../server/Tls.js"
import { combinedKeys, instanceType, type RootfsFtype } from "../simplestreams/Ftype.js"
import { type Compat, metadataFtypes } from "../simplestreams/Compat.js"
import type { Images, Item, Product } from "../simplestreams/Streams.js"

/** What the page says about the server itself: where clients add it, under which name, and how to trust it. */
export interface PageSite {
  /** The remote URL clients add (https://host[:port][/path]). */
  readonly url: string
  /** The remote name the commands use. */
  readonly remote: string
  /** The clients the catalog has metadata items for (its compat mode). */
  readonly clients: ReadonlyArray<Client>
  /** The certificate's PEM when it is self-signed: clients must pin it, and the page shows how. */
  readonly selfSignedPem?: string | undefined
  /** A sentence about the URL (a private server's: what to put in place of USER and PASSWORD). */
  readonly note?: string | undefined
}

/** One image clients list: a rootfs of a version, combined with a metadata file. */
export interface PageImage {
  /** The version (its folder name, which clients take for the image's date). */
  readonly v: string
  readonly t: "container" | "virtual-machine"
  /** Bytes clients download: metadata + rootfs. */
  readonly s: number
  /** The fingerprint, sha256(metadata ‖ rootfs). */
  readonly f: string
  /** The clients that list it under this fingerprint, when not every client of the catalog does. */
  readonly c?: ReadonlyArray<Client>
  /** The newest image of its type in the product: the one the aliases name. */
  readonly n?: 1
}

export interface PageProduct {
  /** The product key, `os:release:arch:variant`. */
  readonly k: string
  readonly os: string
  readonly release: string
  readonly title: string
  readonly arch: string
  readonly variant: string
  readonly aliases: ReadonlyArray<string>
  readonly images: ReadonlyArray<PageImage>
}

const metadataClients: Readonly<Record<string, Client>> = { "lxd.tar.xz": "lxc", "incus.tar.xz": "incus" }
const rootfsFtypes: ReadonlySet<string> = new Set<RootfsFtype>(["squashfs", "root.tar.xz", "disk-kvm.img"])

/** The clients a catalog of this compat mode serves, LXD first. */
export const clientsOf = (compat: Compat): ReadonlyArray<Client> =>
  (["lxc", "incus"] as const).filter((c) => metadataFtypes(compat).some((f) => metadataClients[f] === c))

/** The images of one product, as clients list them. Pure. */
export const pageProduct = (key: string, product: Product): PageProduct => {
  const images: Array<PageImage> = []
  for (const version of Object.keys(product.versions).sort()) {
    const items = Object.values(product.versions[version]!.items)
    const metadata = items.filter((i) => metadataClients[i.ftype] !== undefined)
    for (const rootfs of items.filter((i) => rootfsFtypes.has(i.ftype))) {
      const combinedKey = combinedKeys(rootfs.ftype as RootfsFtype)[0]! as keyof Item
      const byFingerprint = new Map<string, { size: number; clients: Array<Client> }>()
      for (const meta of metadata) {
        const fingerprint = meta[combinedKey]
        if (typeof fingerprint !== "string") continue
        const entry = byFingerprint.get(fingerprint) ?? { size: meta.size + rootfs.size, clients: [] }
        entry.clients.push(metadataClients[meta.ftype]!)
        byFingerprint.set(fingerprint, entry)
      }
      for (const [f, { size, clients }] of byFingerprint) {
        images.push({ v: version, t: instanceType(rootfs.ftype as RootfsFtype), s: size, f, ...(clients.length < metadata.length ? { c: clients } : {}) })
      }
    }
  }
  // clients point the aliases at the newest image of each type
  const newest = new Map<string, string>()
  for (const i of images) newest.set(i.t, i.v)
  return {
    k: key,
    os: product.os,
    release: product.release,
    title: product.release_title,
    arch: product.arch,
    variant: product.variant,
    aliases: product.aliases.split(",").filter((a) => a !== ""),
    images: images.map((i) => (newest.get(i.t) === i.v ? { ...i, n: 1 as const } : i))
  }
}

/** JSON that can sit inside a `<script>` element: no `<` (so no `</script>`), `>` or `&` in its text. */
export const scriptJson = (value: unknown): string =>
  JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)

/** One product's part of the page's data. */
export const productFragment = (product: PageProduct): string => scriptJson(product)

export const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!)

/** A word of a shell command, quoted when it holds anything a shell would read. */
const shellWord = (word: string): string => (/^[A-Za-z0-9_@%+=:,./~-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`)

const clientNames: Readonly<Record<Client, string>> = { lxc: "LXD", incus: "Incus" }

/** The commands that add the server to one client, pin included when the certificate is self-signed. Pure. */
export const clientSetup = (site: PageSite, client: Client): ReadonlyArray<string> => [
  ...(site.selfSignedPem === undefined
    ? []
    : [
        `mkdir -p ${clientConfigDirs[client]}/servercerts`,
        `cat > ${pinnedCertPath(client, site.remote)} <<'EOF'`,
        ...site.selfSignedPem.trim().split("\n"),
        "EOF"
      ]),
  remoteAddCommand(client, site.remote, shellWord(site.url)),
  `${client} image list ${site.remote}:`
]

const STYLE = `
:root{color-scheme:light dark;--fg:#1d2125;--muted:#5f6b76;--line:#d8dee4;--bg:#fff;--alt:#f5f7f9;--accent:#0b5cad}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ec;--muted:#9aa6b2;--line:#39414a;--bg:#15191d;--alt:#1c2227;--accent:#6cb0f5}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1200px;margin:0 auto;padding:16px}
h1{font-size:1.5em;margin:.2em 0}
h2{font-size:1.15em;margin:1.2em 0 .4em}
p{margin:.4em 0}
.muted{color:var(--muted)}
code,pre{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
code{overflow-wrap:anywhere}
pre{background:var(--alt);border:1px solid var(--line);border-radius:6px;padding:10px;overflow-x:auto;margin:.4em 0}
.clients{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:12px}
input[type=search]{width:100%;font:inherit;padding:8px 10px;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg)}
table{width:100%;border-collapse:collapse;margin-top:8px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{white-space:nowrap}
th button{font:inherit;font-weight:600;color:inherit;background:none;border:0;padding:0;cursor:pointer}
th[aria-sort=ascending] button::after{content:" \\25B2"}
th[aria-sort=descending] button::after{content:" \\25BC"}
tbody tr.image{cursor:pointer}
tbody tr.image:hover{background:var(--alt)}
td.num{text-align:right;white-space:nowrap}
.alias{font-weight:600}
.other{display:block;color:var(--muted);font-size:.9em}
.tag{display:inline-block;font-size:.8em;padding:0 6px;border:1px solid var(--line);border-radius:9px;color:var(--muted);margin-left:4px}
.fp{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
tr.launch td{background:var(--alt)}
tr.launch pre{margin:0}
@media (max-width:700px){
  thead{display:none}
  table,tbody,tr,td{display:block;width:100%}
  tr.image{border:1px solid var(--line);border-radius:8px;margin:10px 0;padding:4px 0}
  td{border:0;padding:2px 10px}
  td.num{text-align:left}
  td[data-label]::before{content:attr(data-label) ": ";color:var(--muted)}
  tr.launch{margin-top:-10px}
}
`

const SCRIPT = `
(() => {
  const data = JSON.parse(document.getElementById("catalog").textContent);
  const LIMIT = 1000;
  const rows = [];
  for (const p of data.products)
    for (const i of p.images)
      rows.push({ p, i, text: [p.k, p.os, p.release, p.title, p.arch, p.variant, p.aliases.join(" "), i.t, i.v, i.f].join(" ").toLowerCase() });
  const q = document.getElementById("q");
  const tbody = document.getElementById("rows");
  const status = document.getElementById("status");
  const params = new URLSearchParams(location.search);
  const keys = {
    name: (r) => r.p.aliases[0] || r.p.k,
    description: (r) => r.p.os + " " + r.p.title,
    arch: (r) => r.p.arch,
    type: (r) => r.i.t,
    version: (r) => r.i.v,
    size: (r) => r.i.s,
    fingerprint: (r) => r.i.f
  };
  let sort = keys[params.get("sort")] ? params.get("sort") : "name";
  let descending = params.get("order") === "desc";
  q.value = params.get("q") || "";
  const order = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
  const compare = (a, b) => {
    const c = order(keys[sort](a), keys[sort](b));
    // ties: by product, then newest version first, then type
    return (descending ? -c : c) || order(a.p.k, b.p.k) || order(b.i.v, a.i.v) || order(a.i.t, b.i.t);
  };
  const size = (n) => {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let u = 0;
    while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
    return (u === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + " " + units[u];
  };
  const date = (v) => {
    const m = /^(\\d{4})(\\d{2})(\\d{2})(?:_(\\d{2}):?(\\d{2}))?/.exec(v);
    return m ? m[1] + "-" + m[2] + "-" + m[3] + (m[4] ? " " + m[4] + ":" + m[5] : "") : v;
  };
  const el = (tag, text, className) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (className) e.className = className;
    return e;
  };
  const cell = (label, className, ...children) => {
    const td = el("td", undefined, className);
    td.dataset.label = label;
    td.append(...children);
    return td;
  };
  const launch = (r, client) =>
    client + " launch " + data.remote + ":" + (r.i.n && r.p.aliases.length > 0 ? r.p.aliases[0] : r.i.f) + (r.i.t === "virtual-machine" ? " --vm" : "");
  const row = (r) => {
    const tr = el("tr", undefined, "image");
    tr.dataset.fingerprint = r.i.f;
    tr.dataset.product = r.p.k;
    const name = cell("Image", "", el("span", r.p.aliases[0] || r.p.k, "alias"));
    if (r.i.n) name.append(el("span", "newest", "tag"));
    for (const c of r.i.c || []) name.append(el("span", c === "lxc" ? "LXD only" : "Incus only", "tag"));
    if (r.p.aliases.length > 1) name.append(el("span", r.p.aliases.slice(1).join(", "), "other"));
    const fp = el("span", r.i.f.slice(0, 12), "fp");
    fp.title = r.i.f;
    tr.append(
      name,
      cell("Description", "", r.p.os + " " + r.p.title + (r.p.variant !== "default" ? " (" + r.p.variant + ")" : "")),
      cell("Arch", "", r.p.arch),
      cell("Type", "", r.i.t),
      cell("Version", "", date(r.i.v)),
      cell("Size", "num", size(r.i.s)),
      cell("Fingerprint", "", fp)
    );
    tr.addEventListener("click", () => {
      const next = tr.nextElementSibling;
      if (next && next.classList.contains("launch")) return next.remove();
      const more = el("tr", undefined, "launch");
      const td = el("td");
      td.colSpan = 7;
      const clients = (r.i.c || data.clients).filter((c) => data.clients.includes(c));
      td.append(el("pre", ["fingerprint " + r.i.f, ...clients.map((c) => launch(r, c))].join("\\n")));
      more.append(td);
      tr.after(more);
    });
    return tr;
  };
  const render = () => {
    const terms = q.value.toLowerCase().split(/\\s+/).filter((t) => t !== "");
    const matches = rows.filter((r) => terms.every((t) => r.text.includes(t))).sort(compare);
    tbody.replaceChildren(...matches.slice(0, LIMIT).map(row));
    status.textContent =
      matches.length + " of " + rows.length + " images" + (matches.length > LIMIT ? "; the first " + LIMIT + " are shown: narrow the search" : "");
    for (const th of document.querySelectorAll("th[data-sort]"))
      th.setAttribute("aria-sort", th.dataset.sort === sort ? (descending ? "descending" : "ascending") : "none");
    const search = new URLSearchParams();
    if (q.value) search.set("q", q.value);
    if (sort !== "name") search.set("sort", sort);
    if (descending) search.set("order", "desc");
    const query = search.toString();
    history.replaceState(null, "", query ? "?" + query : location.pathname);
  };
  for (const th of document.querySelectorAll("th[data-sort]"))
    th.querySelector("button").addEventListener("click", () => {
      descending = sort === th.dataset.sort ? !descending : th.dataset.sort === "version" || th.dataset.sort === "size";
      sort = th.dataset.sort;
      render();
    });
  q.addEventListener("input", render);
  document.body.classList.add("ready");
  render();
})();
`

const cspHash = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`
/** Only this page's own script and style run: a value that escaped its escaping still could not. */
const csp = `default-src 'none'; script-src ${cspHash(SCRIPT)}; style-src ${cspHash(STYLE)}; img-src 'none'; base-uri 'none'; form-action 'none'`

const columns: ReadonlyArray<readonly [key: string, label: string]> = [
  ["name", "Image"],
  ["description", "Description"],
  ["arch", "Arch"],
  ["type", "Type"],
  ["version", "Version"],
  ["size", "Size"],
  ["fingerprint", "Fingerprint"]
]

/** The host (and port) of the remote URL: what the page calls the server, in no one else's words. */
const hostOf = (url: string): string => {
  try {
    return new URL(url).host
  } catch {
    return url
  }
}

/**
 * The page around its products' data: what comes before the first product's fragment and after the last
 * (fragments go between, comma-separated). `example`: an alias to show in the launch example, and whether it
 * names a VM only. Pure.
 */
export const pageShell = (site: PageSite, example?: { readonly alias: string; readonly vm: boolean }): { readonly head: string; readonly tail: string } => {
  const host = escapeHtml(hostOf(site.url))
  const pin =
    site.selfSignedPem === undefined
      ? ""
      : `<p>The server's certificate is self-signed: the commands pin it for the remote (LXD from the snap reads
<code>~/snap/lxd/common/config/servercerts/</code> instead). Check its SHA-256 fingerprint against the one the
server's operator gave you first:<br><code class="fp">${escapeHtml(fingerprintOf(site.selfSignedPem))}</code></p>\n`
  const note = site.note === undefined ? "" : `<p>${escapeHtml(site.note)}</p>\n`
  const launchExample = (client: Client) =>
    example === undefined ? [] : [`${client} launch ${site.remote}:${example.alias}${example.vm ? " --vm" : ""}`]
  const setups = site.clients
    .map(
      (client) =>
        `<section><h3>${clientNames[client]}</h3><pre>${escapeHtml([...clientSetup(site, client), ...launchExample(client)].join("\n"))}</pre></section>`
    )
    .join("\n")
  const columnHeads = columns
    .map(([key, label]) => `<th data-sort="${key}" aria-sort="none"><button type="button">${label}</button></th>`)
    .join("")
  const head = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="generator" content="lxd-image-server">
<title>Images at ${host}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>Images at ${host}</h1>
<p class="muted">A simplestreams image server for LXD and Incus: <code>${escapeHtml(site.url)}</code>. The catalog clients
read is <code>streams/v1/index.json</code>.</p>
<h2>Use it</h2>
${note}${pin}<div class="clients">
${setups}
</div>
<p class="muted">Each alias names the newest image of its type; click an image for the commands that launch exactly that one.</p>
<h2>Images</h2>
<input id="q" type="search" placeholder="Search: name, release, architecture, type, version, fingerprint" aria-label="Search the images" autocomplete="off">
<p id="status" class="muted" aria-live="polite"></p>
<noscript><p>The table needs JavaScript; the catalog itself is <code>streams/v1/images.json</code>.</p></noscript>
<table>
<thead><tr>${columnHeads}</tr></thead>
<tbody id="rows"></tbody>
</table>
</main>
<script type="application/json" id="catalog">{"remote":${scriptJson(site.remote)},"clients":${scriptJson(site.clients)},"products":[`
  const tail = `]}</script>
<script>${SCRIPT}</script>
</body>
</html>
`
  return { head, tail }
}

/** The whole page from the products' fragments (in product order). Pure. */
export const renderPage = (site: PageSite, fragments: ReadonlyArray<string>, example?: { readonly alias: string; readonly vm: boolean }): string => {
  const { head, tail } = pageShell(site, example)
  return `${head}${fragments.join(",")}${tail}`
}

/** The launch example: the first product's main alias. */
export const exampleOf = (products: ReadonlyArray<PageProduct>): { readonly alias: string; readonly vm: boolean } | undefined => {
  const first = products.find((p) => p.aliases.length > 0)
  return first === undefined ? undefined : { alias: first.aliases[0]!, vm: first.images.every((i) => i.t === "virtual-machine") }
}

/** The whole page of a catalog, at once (`update`, tests). Pure. */
export const catalogPage = (site: PageSite, images: Images): string => {
  const products = Object.keys(images.products)
    .sort()
    .map((key) => pageProduct(key, images.products[key]!))
  return renderPage(site, products.map(productFragment), exampleOf(products))
}

/**
 * The page of a catalog that changes a product at a time: each product is rendered again only when its piece
 * of images.json changed (CatalogText keeps a product's piece, the same Buffer, while the product stays).
 */
export class PageFragments {
  private cache = new Map<string, Fragment>()

  /**
   * The page of these products, in catalog order, as UTF-8 (copied together from each product's bytes, not built
   * as one string: 2.5 MB at 10,000 versions); `productOf` reads a product out of its piece when needed.
   */
  render<P extends object>(site: PageSite, pieces: ReadonlyArray<readonly [string, P]>, productOf: (key: string, piece: P) => Product): Buffer {
    const next = new Map<string, Fragment>()
    for (const [key, piece] of pieces) {
      const known = this.cache.get(key)
      if (known !== undefined && known.piece === piece) {
        next.set(key, known)
        continue
      }
      const product = pageProduct(key, productOf(key, piece))
      next.set(key, { piece, product, fragment: Buffer.from(productFragment(product)) })
    }
    this.cache = next
    const entries = [...next.values()]
    const { head, tail } = pageShell(site, exampleOf(entries.map((e) => e.product)))
    const parts: Array<Buffer> = [Buffer.from(head)]
    entries.forEach((e, i) => {
      if (i > 0) parts.push(comma)
      parts.push(e.fragment)
    })
    parts.push(Buffer.from(tail))
    return Buffer.concat(parts)
  }
}

interface Fragment {
  readonly piece: object
  readonly product: PageProduct
  readonly fragment: Buffer
}

const comma = Buffer.from(",")
