/**
 * The private server's rules, pure: tokens, user names, Authorization headers, htpasswd files, what a request
 * is answered before any file is looked at, the URLs clients add and the page shows, and the nginx site.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { renderSite } from "../../src/server/NginxSite.js"
import {
  decide,
  gateRules,
  parseBasicAuthorization,
  parseHtpasswd,
  pageRemote,
  passwordCheckable,
  passwordUrl,
  tokenOfFile,
  tokenProblem,
  tokenUrl,
  userProblem
} from "../../src/server/PrivateAccess.js"
import { plainHttpSites, siteAccessOf, siteMismatch } from "../../src/server/PrivateSite.js"

const token = "fR1vBKQYOWGLX2OuK2HY7AOsMbu4QD4B"
const basic = (userPass: string) => `Basic ${Buffer.from(userPass).toString("base64")}`

import { apr1, md5, sha256Rounds, sha512 } from "../support/PasswordHashes.js"

describe("tokens and user names", () => {
  it("takes a token of 16 or more base64url characters, and says what is wrong with any other", () => {
    expect(tokenProblem(token)).toBeUndefined()
    expect(tokenProblem("a-b_c".repeat(4))).toBeUndefined()
    expect(tokenProblem("short_token")).toMatch(/has 11 characters \(at least 16/)
    for (const [bad, char] of [["abc/defghijklmnopq", "/"], ["abc%2Fdefghijklmnopq", "%"], ["abc defghijklmnopq", " "], ["abc.defghijklmnopq", "."], ["abcdéfghijklmnopq", "é"], ["abc?defghijklmnopq", "?"]]) {
      expect(tokenProblem(bad!), bad).toBe(`'${char}' is not allowed in a token (at least 16 characters, each A-Z a-z 0-9 _ or -)`)
    }
    expect(tokenProblem("abc\ndefghijklmnopq")).toMatch(/^'\\n' is not allowed/)
    // the file's final newline (and blanks around the token) are not part of it
    expect(tokenOfFile(`  ${token}\n`)).toBe(token)
  })
  it("takes user names that need no escaping in a URL or the htpasswd file", () => {
    for (const good of ["images", "ci.runner-1", "A_b"]) expect(userProblem(good), good).toBeUndefined()
    for (const bad of ["", "a:b", "a@b", "a b", "a/b", "x".repeat(65)]) expect(userProblem(bad), bad).toMatch(/is not a usable user name/)
  })
})

describe("the Authorization header", () => {
  it("reads Basic credentials, whatever the case of the scheme, with a colon allowed in the password", () => {
    expect(parseBasicAuthorization(basic("images:s3cret"))).toEqual({ user: "images", password: "s3cret" })
    expect(parseBasicAuthorization(`bAsIc ${Buffer.from("u:a:b").toString("base64")}`)).toEqual({ user: "u", password: "a:b" })
    expect(parseBasicAuthorization(basic("u:pässwörd"))).toEqual({ user: "u", password: "pässwörd" })
  })
  it("takes nothing else for credentials", () => {
    for (const bad of [undefined, "", "Basic", "Basic !!!", "Bearer abc", basic("nocolon"), basic(":emptyuser"), `Basic ${Buffer.from([0x75, 0x3a, 0xff, 0xfe]).toString("base64")}`]) {
      expect(parseBasicAuthorization(bad), String(bad)).toBeUndefined()
    }
  })
  it("gives openssl only passwords it reads whole (one line, no NUL, at most 256 bytes)", () => {
    expect(passwordCheckable("s3cret")).toBe(true)
    expect(passwordCheckable("x".repeat(256))).toBe(true)
    for (const bad of ["", "a\nb", "a\0b", "x".repeat(257), "é".repeat(129)]) expect(passwordCheckable(bad), JSON.stringify(bad)).toBe(false)
  })
})

describe("the htpasswd file", () => {
  it("reads the hashes openssl passwd makes, skipping blank lines and comments", () => {
    const text = `# made by hand\n\nimages:${sha512}\r\nci:${sha256Rounds}\nold:${apr1}\nolder:${md5}:extra field\n`
    const users = Either.getOrThrow(parseHtpasswd(text))
    expect(users.map((u) => [u.user, u.scheme, u.salt, u.line])).toEqual([
      ["images", "6", "xyz", 3],
      ["ci", "5", "rounds=10000$abcdefgh", 4],
      ["old", "apr1", "abcdefgh", 5],
      ["older", "1", "xyz", 6]
    ])
    expect(users[3]!.hash).toBe(md5)
  })
  it("refuses a file serve could not check as nginx does, naming the line and what to use", () => {
    const problem = (text: string) => Either.getLeft(parseHtpasswd(text)).pipe((o) => (o._tag === "Some" ? o.value : undefined))
    expect(problem("")).toEqual({ line: undefined, reason: "no user in it" })
    expect(problem("# only a comment\n")).toEqual({ line: undefined, reason: "no user in it" })
    expect(problem(`a:${sha512}\nb:$2y$05$abcdefghijklmnopqrstuu5Sfsk1Gk7bFzD2mFhJ7iJ0Iu6vE2kS2\n`)).toEqual({
      line: 2,
      reason: "user b: bcrypt hashes are not supported (make one with `openssl passwd -6`, or -5, -apr1)"
    })
    expect(problem("a:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")?.reason).toMatch(/^user a: \{SHA\} hashes are not supported/)
    expect(problem("a:$y$j9T$abc$def\n")?.reason).toMatch(/yescrypt hashes are not supported/)
    expect(problem("a:plaintext\n")?.reason).toMatch(/^user a: not a password hash serve can check/)
    expect(problem(`a:${sha512}\na:${apr1}\n`)).toEqual({ line: 2, reason: "user a is already on line 1" })
    expect(problem(`just a line\n`)).toEqual({ line: 1, reason: "not a user:hash line" })
    expect(problem(`:${sha512}\n`)).toEqual({ line: 1, reason: "not a user:hash line" })
  })
})

describe("the gate", () => {
  const path = gateRules("path", token)
  const pass = gateRules("basic", token)
  const both = gateRules("both", token)
  it("path: serves what follows the token, sends /<token> to /<token>/, and answers anything else 404", () => {
    expect(decide(path, `/${token}/streams/v1/index.json`, undefined)).toEqual({ _tag: "Pass", path: "/streams/v1/index.json" })
    expect(decide(path, `/${token}/?q=debian`, undefined)).toEqual({ _tag: "Pass", path: "/?q=debian" })
    expect(decide(path, `/${token}/images/a/20240101_10%3A00/x`, undefined)).toEqual({ _tag: "Pass", path: "/images/a/20240101_10%3A00/x" })
    expect(decide(path, `/${token}`, undefined)).toEqual({ _tag: "Redirect", location: `/${token}/` })
    for (const bad of ["/", "/index.html", "/images/a/b", "/streams/v1/index.json", `/${token}x/images/a`, `/${token.slice(1)}/images/a`, `//${token}/images/a`, `/x/${token}/images/a`, `/${token.toLowerCase()}/`, `/%${token}/`]) {
      expect(decide(path, bad, basic("images:s3cret")), bad).toEqual({ _tag: "NotFound" })
    }
  })
  it("basic: asks for credentials, and hands over those that came, path untouched", () => {
    expect(decide(pass, "/images/a/b", undefined)).toEqual({ _tag: "Challenge" })
    expect(decide(pass, "/images/a/b", "Bearer x")).toEqual({ _tag: "Challenge" })
    expect(decide(pass, "/images/a/b", basic("images:s3cret"))).toEqual({ _tag: "Check", path: "/images/a/b", credentials: { user: "images", password: "s3cret" } })
    // the token means nothing to a basic-only server
    expect(decide(pass, `/${token}/images/a/b`, undefined)).toEqual({ _tag: "Challenge" })
  })
  it("both: the token needs no password; without it, a password is asked for", () => {
    expect(decide(both, `/${token}/images/a/b`, undefined)).toEqual({ _tag: "Pass", path: "/images/a/b" })
    expect(decide(both, "/images/a/b", undefined)).toEqual({ _tag: "Challenge" })
    expect(decide(both, "/", basic("u:p"))).toEqual({ _tag: "Check", path: "/", credentials: { user: "u", password: "p" } })
  })
})

describe("the URLs", () => {
  it("puts the token last in the path, and the credentials before the host, escaped", () => {
    expect(tokenUrl("https://images.example.com", token)).toBe(`https://images.example.com/${token}`)
    expect(tokenUrl("https://h:8444/lxd/", token)).toBe(`https://h:8444/lxd/${token}`)
    expect(passwordUrl("https://h:8444/lxd", "images", "a/b@c:d")).toBe("https://images:a%2Fb%40c%3Ad@h:8444/lxd")
  })
  it("shows the token on the page of a path-only server, and never a password", () => {
    expect(pageRemote("https://h", "path", token)).toEqual({ url: `https://h/${token}` })
    expect(pageRemote("https://h", "path", undefined)).toEqual({ url: "https://h/TOKEN", note: "A private server: put the token you were given in place of TOKEN." })
    const basicPage = pageRemote("https://h", "basic", token)
    expect(basicPage.url).toBe("https://USER:PASSWORD@h")
    expect(basicPage.note).toMatch(/in place of USER and PASSWORD \(this page does not show them\)\.$/)
    // with basic on, the token stays off the page: a user taken out of htpasswd must not keep it
    const bothPage = pageRemote("https://h", "both", token)
    expect(JSON.stringify(bothPage)).not.toContain(token)
    expect(bothPage.note).toMatch(/or add the URL with the token you were given\.$/)
  })
})

describe("the private nginx site", () => {
  const options = { rootDir: "/srv/www", cert: "/c.crt", key: "/c.key", hostnames: ["images.example.com"], port: 443, httpPort: 80 }
  const path = renderSite({ ...options, private: { form: "path", token, htpasswd: undefined } })
  const pass = renderSite({ ...options, private: { form: "basic", token: undefined, htpasswd: "/etc/lxd-image-server/htpasswd" } })
  const both = renderSite({ ...options, private: { form: "both", token, htpasswd: "/etc/lxd-image-server/htpasswd" } })
  it("has no plain-HTTP server, whatever the HTTP port says", () => {
    for (const site of [path, pass, both]) {
      expect(site).not.toMatch(/listen 80/)
      expect(site.match(/^server \{/gm)).toHaveLength(1)
    }
  })
  it("path: files only through the token's rewrite (internal locations), no auth_basic", () => {
    expect(path).toContain(`location /${token}/ {\n        rewrite ^/${token}(/.*)$ $1 last;\n    }`)
    expect(path).toContain(`location = /${token} {\n        return 301 /${token}/;`)
    for (const location of ["location /streams/ {", "location /images/ {", "location = / {", "location = /index.html {"]) {
      expect(path).toContain(`${location}\n        internal;`)
    }
    expect(path).not.toContain("auth_basic")
  })
  it("basic: auth_basic over the whole server, no token; both: the realm is off for requests sent with the token", () => {
    expect(pass).toContain(`auth_basic "lxd-image-server";\n    auth_basic_user_file /etc/lxd-image-server/htpasswd;`)
    expect(pass).not.toContain("internal;")
    expect(pass).not.toContain("rewrite")
    expect(both).toMatch(new RegExp(`map \\$request_uri \\$lxd_image_server_realm \\{\\s*~\\^/${token}/ off;\\s*default "lxd-image-server";\\s*\\}\\s*server \\{`))
    expect(both).toContain("auth_basic $lxd_image_server_realm;")
    expect(both).not.toContain("internal;")
  })
  it("marks what it was written for, and a kept site that no longer fits is named", () => {
    const publicSite = renderSite(options)
    expect([siteAccessOf(publicSite), siteAccessOf(path), siteAccessOf(pass), siteAccessOf(both)]).toEqual(["public", "path", "basic", "both"])
    expect(siteMismatch(publicSite, undefined)).toBeUndefined()
    expect(siteMismatch(path, { form: "path", token, htpasswd: undefined })).toBeUndefined()
    expect(siteMismatch(publicSite, { form: "path", token, htpasswd: undefined })).toBe("it was written for public access, not private (path)")
    expect(siteMismatch(both, undefined)).toBe("it was written for private (both) access, not public")
    expect(siteMismatch(path, { form: "path", token: "another-token-0123456789", htpasswd: undefined })).toBe("it holds another token than the token file")
    expect(siteMismatch(pass, { form: "basic", token: undefined, htpasswd: "/elsewhere" })).toBe("it names another htpasswd file")
  })
  it("finds the other sites that listen on port 80", () => {
    const files = [
      { name: "default", text: "server {\n\tlisten 80 default_server;\n\tlisten [::]:80 default_server;\n}" },
      { name: "v6", text: "server { listen [::]:80; }" },
      { name: "addr", text: "server {\n  listen 0.0.0.0:80;\n}" },
      { name: "tls", text: "server {\n  listen 443 ssl;\n  # listen 80;\n}" },
      { name: "alt", text: "server {\n  listen 8080;\n  listen [::]:8080;\n}" }
    ]
    expect(plainHttpSites(files)).toEqual(["default", "v6", "addr"])
  })
})
