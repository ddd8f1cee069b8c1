import { describe, expect, it } from "@effect/vitest"
import { renderSite } from "../../src/server/NginxSite.js"
import { contentType, isServedPath, openFailureStatus, parseRange, requestedPath } from "../../src/server/StaticFiles.js"
import { subjectAltName, subjectNames } from "../../src/server/Tls.js"
import { serveUrl } from "../../src/server/ServeUrl.js"

describe("the static server's rules", () => {
  it("maps request paths below the root and refuses traversal, dotfiles and NUL", () => {
    expect(requestedPath("/streams/v1/index.json")).toBe("streams/v1/index.json")
    expect(requestedPath("/images/debian/bookworm/amd64/default/20240101_10%3A00/lxd.tar.xz")).toBe("images/debian/bookworm/amd64/default/20240101_10:00/lxd.tar.xz")
    for (const bad of ["/../etc/passwd", "/images/../../etc/passwd", "/%2e%2e/etc/passwd", "/images/%2E%2E/%2E%2E/x", "/streams/.lxd-image-server.lock", "/images/x/.20240101_10:00/lxd.tar.xz", "/a%00b", "/a%5c..%5cb", "/%zz", "relative"]) {
      expect(requestedPath(bad), bad).toBeUndefined()
    }
  })
  it("serves images/, streams/ and the catalog page only, like the nginx site: not the certificate's key beside them", () => {
    expect(requestedPath("/images/a/b")).toBe("images/a/b")
    expect(requestedPath("//streams//v1/images.json")).toBe("streams/v1/images.json")
    expect([requestedPath("/"), requestedPath("/index.html"), requestedPath("/?q=debian")]).toEqual(["index.html", "index.html", "index.html"])
    for (const bad of ["/images", "/images/", "/streams/", "/ssl/lxd-image-server.key", "/state/hashes.json", "/index.htm", "/other.html", "/Images/a", "/imagesx/a", "/%69mages"]) {
      expect(requestedPath(bad), bad).toBeUndefined()
    }
    expect(requestedPath("/%69mages/a")).toBe("images/a")
    // the same rule applied to where an opened file really is, relative to the real root
    expect(isServedPath("images/debian/x/lxd.tar.xz")).toBe(true)
    expect(isServedPath("index.html")).toBe(true)
    for (const bad of ["ssl/lxd-image-server.key", "images", "../images/x", "images/.20240101_10:00/x", "streams/.lxd-image-server.lock", "", "ssl/index.html", ".index.html"]) {
      expect(isServedPath(bad), bad).toBe(false)
    }
  })
  it("answers a file that cannot be opened with 404 only when it is not there; a full fd table is 503, the rest 500", () => {
    for (const code of ["ENOENT", "ENOTDIR", "ENAMETOOLONG"]) expect(openFailureStatus(code), code).toBe(404)
    for (const code of ["EMFILE", "ENFILE", "EAGAIN"]) expect(openFailureStatus(code), code).toBe(503)
    for (const code of ["EIO", "EACCES", "EPERM", "ELOOP", undefined]) expect(openFailureStatus(code), String(code)).toBe(500)
  })
  it("answers one byte range, a suffix range, and refuses what lies past the end", () => {
    expect(parseRange(undefined, 100)).toEqual({ _tag: "Whole" })
    expect(parseRange("bytes=0-9", 100)).toEqual({ _tag: "Part", start: 0, end: 9 })
    expect(parseRange("bytes=90-", 100)).toEqual({ _tag: "Part", start: 90, end: 99 })
    expect(parseRange("bytes=-10", 100)).toEqual({ _tag: "Part", start: 90, end: 99 })
    expect(parseRange("bytes=50-500", 100)).toEqual({ _tag: "Part", start: 50, end: 99 })
    expect(parseRange("bytes=100-", 100)).toEqual({ _tag: "Unsatisfiable" })
    expect(parseRange("bytes=0-1,5-6", 100)).toEqual({ _tag: "Whole" })
    expect(contentType("a/index.json")).toBe("application/json")
    expect(contentType("a/rootfs.squashfs")).toBe("application/octet-stream")
    expect(contentType("index.html")).toBe("text/html; charset=utf-8")
  })
})

describe("certificate names", () => {
  it("covers every hostname, the machine's, localhost and 127.0.0.1, each once", () => {
    expect(subjectNames(["images.example.com", "Images.example.com", "10.0.0.5"], "host1")).toEqual(["images.example.com", "10.0.0.5", "host1", "localhost", "127.0.0.1"])
    expect(subjectAltName(["a.example", "127.0.0.1", "::1"])).toBe("DNS:a.example,IP:127.0.0.1,IP:::1")
  })
})

describe("the URL serve prints", () => {
  it("names the first --hostname; else the one address it listens on; else the machine's hostname", () => {
    expect(serveUrl(["images.test"], "127.0.0.1", 8444, "host1")).toBe("https://images.test:8444")
    expect(serveUrl([], "127.0.0.1", 8444, "host1")).toBe("https://127.0.0.1:8444")
    expect(serveUrl([], "10.0.0.5", 443, "host1")).toBe("https://10.0.0.5")
    expect(serveUrl([], "::1", 8444, "host1")).toBe("https://[::1]:8444")
    for (const any of ["0.0.0.0", "::"]) expect(serveUrl([], any, 8444, "host1")).toBe("https://host1:8444")
    expect(serveUrl([], "localhost", 8444, "host1")).toBe("https://localhost:8444")
  })
})

describe("the nginx site", () => {
  const site = renderSite({ rootDir: "/srv/www", cert: "/etc/ssl/c.crt", key: "/etc/ssl/c.key", hostnames: ["images.example.com"], port: 443, httpPort: 80 })
  it("uses absolute paths, TLS 1.2 and 1.3, no listings, no-cache on streams/, and images/ only over HTTP", () => {
    expect(site).toContain("ssl_protocols TLSv1.2 TLSv1.3;")
    expect(site).toContain("root /srv/www;")
    expect(site).toContain("ssl_certificate /etc/ssl/c.crt;")
    expect(site).toContain('add_header Cache-Control "no-cache";')
    expect(site).toContain("autoindex off;")
    expect(site).not.toMatch(/autoindex on/)
    const http = site.slice(site.indexOf("listen 80;"))
    expect(http).toContain("location /images/")
    expect(http).not.toContain("/streams/")
    expect(renderSite({ rootDir: "/r", cert: "/c", key: "/k", hostnames: [], port: 8443, httpPort: 0 })).not.toContain("listen 0")
  })
  it("serves the catalog page at / and /index.html over HTTPS, uncached, and not over plain HTTP", () => {
    const https = site.slice(0, site.indexOf("listen 80;"))
    expect(https).toMatch(/location = \/ \{\s*try_files \/index\.html =404;\s*add_header Cache-Control "no-cache";/)
    expect(https).toMatch(/location = \/index\.html \{\s*add_header Cache-Control "no-cache";/)
    expect(site.slice(site.indexOf("listen 80;"))).not.toContain("index.html")
  })
})
