/**
 * `init --private` and `serve --private` as a user runs them: the secrets they make (and keep), where, with
 * which modes, what they print, and bad input (a token unsafe in a URL, a missing, unreadable, empty or bad
 * htpasswd file, a bad user name, a plain-HTTP port): one line, exit 2, nothing else made.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFileSync, spawnSync } from "node:child_process"
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { ConfigFile } from "../../src/config/AppConfig.js"
import { binPath, runBinAsync } from "../support/Bin.js"
import { tempDir } from "../support/Images.js"
import { haveTools, isRoot } from "../support/Tools.js"

const ready = haveTools("openssl")

/** A folder for one init: config in etc/, web root, ssl and nginx folders of its own. */
const setup = (configText?: string) => {
  const base = tempDir("lis-private-cli-")
  mkdirSync(join(base, "etc"))
  if (configText !== undefined) writeFileSync(join(base, "etc", "config.toml"), configText)
  const args = ["--log-file", join(base, "lis.log"), "--config", join(base, "etc", "config.toml")]
  const folders = ["--root-dir", join(base, "www"), "--ssl-dir", join(base, "ssl")]
  return {
    base,
    etc: join(base, "etc"),
    init: (...more: ReadonlyArray<string>) => runBinAsync([...args, "init", ...folders, "--nginx-dir", join(base, "nginx"), "--hostname", "images.test", ...more]),
    serve: (...more: ReadonlyArray<string>) => runBinAsync([...args, "serve", ...folders, "--host", "127.0.0.1", "--port", "1", ...more]),
    site: () => readFileSync(join(base, "nginx", "sites-available", "lxd-image-server.conf"), "utf8")
  }
}

const modeOf = (file: string) => statSync(file).mode & 0o777
const groupOf = (file: string) => execFileSync("stat", ["-c", "%U:%G", file]).toString().trim()

describe.skipIf(!ready)("init --private and serve --private", () => {
  it("path: init makes a token beside the config file (0640, root:www-data as root), prints the URL with it, and keeps it", async () => {
    const s = setup()
    // Debian's default site: the clients' first http:// try would reach it, secret included
    mkdirSync(join(s.base, "nginx", "sites-enabled"), { recursive: true })
    writeFileSync(join(s.base, "nginx", "sites-enabled", "default"), "server {\n\tlisten 80 default_server;\n\tlisten [::]:80 default_server;\n}\n")
    const first = await s.init("--private")
    expect(first.code, first.stderr).toBe(0)
    const tokenFile = join(s.etc, "private-token")
    const token = readFileSync(tokenFile, "utf8").trim()
    expect(token).toMatch(/^[A-Za-z0-9_-]{32}$/)
    expect(modeOf(tokenFile)).toBe(0o640)
    if (isRoot()) expect(groupOf(tokenFile)).toBe("root:www-data")
    // path alone: no password is made
    expect(readdirSync(s.etc).sort()).toEqual(["config.toml", "private-token"])
    expect(first.stdout).toContain(`lxc remote add myimages https://images.test/${token} --protocol simplestreams --public`)
    expect(first.stdout).toContain(`incus remote add myimages https://images.test/${token} --protocol simplestreams --public`)
    expect(first.stdout).toMatch(/SHA-256 fingerprint: ([0-9A-F]{2}:){31}[0-9A-F]{2}/)
    expect(first.stdout).toContain("No plain-HTTP server")
    expect(first.stderr).toContain(`WARN  ${join(s.base, "nginx", "sites-enabled", "default")} listens on port 80: clients send their first try for image files there, with the secret, in clear`)
    // the config says so, for update and the service (the catalog page's URL)
    expect(readFileSync(join(s.etc, "config.toml"), "utf8")).toMatch(/^private = true\nprivate_access = "path"$/m)
    const site = s.site()
    expect(site).toContain(`location /${token}/ {`)
    expect(site).not.toMatch(/listen 80/)
    expect(modeOf(join(s.base, "nginx", "sites-available", "lxd-image-server.conf"))).toBe(0o640)

    const second = await s.init("--private")
    expect(second.code, second.stderr).toBe(0)
    expect(readFileSync(tokenFile, "utf8").trim()).toBe(token)
    expect(second.stdout).toContain(`https://images.test/${token} `)
    expect(second.stderr).toContain("kept the existing nginx site")
  })

  it("both: init makes the token, an htpasswd file nginx reads and the password beside it, and prints both URLs", async () => {
    const s = setup()
    const out = await s.init("--private-access", "both", "--private-user", "ci", "--port", "8443")
    expect(out.code, out.stderr).toBe(0)
    const htpasswd = join(s.etc, "htpasswd")
    const kept = readFileSync(`${htpasswd}.password`, "utf8").trim()
    expect(kept).toMatch(/^ci:[A-Za-z0-9_-]{24}$/)
    const line = readFileSync(htpasswd, "utf8")
    expect(line).toMatch(/^ci:\$6\$[./0-9A-Za-z]+\$[./0-9A-Za-z]+\n$/)
    // the hash is the password's: openssl, given the salt, computes the same
    const salt = line.split("$")[2]!
    expect(execFileSync("openssl", ["passwd", "-6", "-salt", salt, "-stdin"], { input: `${kept.slice(3)}\n` }).toString()).toBe(line.slice(3))
    expect([modeOf(htpasswd), modeOf(`${htpasswd}.password`), modeOf(join(s.etc, "private-token"))]).toEqual([0o640, 0o600, 0o640])
    if (isRoot()) expect([groupOf(htpasswd), groupOf(`${htpasswd}.password`)]).toEqual(["root:www-data", "root:root"])
    const token = readFileSync(join(s.etc, "private-token"), "utf8").trim()
    expect(out.stdout).toContain(`lxc remote add myimages https://images.test:8443/${token} --protocol simplestreams --public`)
    expect(out.stdout).toContain(`incus remote add myimages https://${kept}@images.test:8443 --protocol simplestreams --public`)
    // a port in the URL: the clients' first http:// try goes to it, in clear
    expect(out.stdout).toContain("The URL names port 8443")
    expect(s.site()).toContain(`auth_basic_user_file ${htpasswd};`)
  })

  it("refuses to keep a site written for other access than asked, and says what to do", async () => {
    const s = setup()
    expect((await s.init()).code).toBe(0)
    const out = await s.init("--private")
    expect(out.code).toBe(1)
    expect(out.stderr).toMatch(/the existing nginx site .*lxd-image-server\.conf does not fit: it was written for public access, not private \(path\); remove it and run init again/)
  })

  it("stops with one line and exit 2 on bad input, having made nothing else", async () => {
    const badToken = setup()
    writeFileSync(join(badToken.etc, "private-token"), "abc/def?ghi&jkl=mnop\n")
    const missing = setup(`private = true\nprivate_access = "basic"\nhtpasswd_file = "/nonexistent/htpasswd"\n`)
    const folder = setup(`private_access = "basic"\n`)
    mkdirSync(join(folder.etc, "htpasswd"))
    const empty = setup(`private_access = "basic"\n`)
    writeFileSync(join(empty.etc, "htpasswd"), "# no one\n")
    const bcrypt = setup(`private_access = "both"\n`)
    writeFileSync(join(bcrypt.etc, "htpasswd"), `a:$6$xyz$PAKvmleneF76dJMCB7ba8K2HKOKSvc4SaCsFDIbfDYCnv235b1miMic/DW32Fag7jQfkhMyoBttnxSERDybni.\nb:$2y$05$abcdefghijklmnopqrstuu5Sfsk1Gk7bFzD2mFhJ7iJ0Iu6vE2kS2\n`)
    const user = setup()
    const http = setup()
    const cases = [
      [badToken, await badToken.init("--private"), `${join(badToken.etc, "private-token")}: '/' is not allowed in a token (at least 16 characters, each A-Z a-z 0-9 _ or -)`],
      [badToken, await badToken.serve("--private"), `${join(badToken.etc, "private-token")}: '/' is not allowed in a token`],
      [missing, await missing.init(), "/nonexistent/htpasswd: no such file"],
      [missing, await missing.serve(), "/nonexistent/htpasswd: no such file"],
      [folder, await folder.init("--private"), `${join(folder.etc, "htpasswd")}: cannot read it: EISDIR: illegal operation on a directory`],
      [empty, await empty.serve("--private"), `${join(empty.etc, "htpasswd")}: no user in it`],
      [bcrypt, await bcrypt.init("--private"), `${join(bcrypt.etc, "htpasswd")}: line 2: user b: bcrypt hashes are not supported`],
      [user, await user.init("--private-access", "basic", "--private-user", "a b"), "--private-user: 'a b' is not a usable user name"],
      [http, await http.init("--private", "--http-port", "80"), "--http-port: a private server has no plain-HTTP port"]
    ] as const
    for (const [s, out, message] of cases) {
      expect(out.code, message).toBe(2)
      expect(out.stderr.trim().split("\n"), message).toHaveLength(1)
      expect(out.stderr, message).toContain(message)
      // nothing else was made: no web root, no certificate, no site
      expect(["www", "ssl", "nginx"].filter((d) => existsSync(join(s.base, d))), message).toEqual([])
    }
    // the good file beside the bad one is not made either
    expect(existsSync(join(bcrypt.etc, "private-token"))).toBe(false)
    const choice = await setup().init("--private-access", "token")
    expect(choice.code).toBe(2)
  })

  it.skipIf(!isRoot())("stops serve run by a user who cannot read the htpasswd file, with one line and exit 2", () => {
    const s = setup(`private_access = "basic"\nlog_file = "${join(tempDir("lis-private-log-"), "lis.log")}"\n`)
    for (const dir of [s.base, s.etc]) chmodSync(dir, 0o755)
    chmodSync(join(s.etc, "config.toml"), 0o644)
    const log = readFileSync(join(s.etc, "config.toml"), "utf8").match(/log_file = "(.*)"/)![1]!
    writeFileSync(log, "")
    chmodSync(log, 0o666)
    chmodSync(join(log, ".."), 0o755)
    writeFileSync(join(s.etc, "htpasswd"), "images:$6$xyz$PAKvmleneF76dJMCB7ba8K2HKOKSvc4SaCsFDIbfDYCnv235b1miMic/DW32Fag7jQfkhMyoBttnxSERDybni.\n", { mode: 0o600 })
    const out = spawnSync("setpriv", ["--reuid", "nobody", "--regid", "nogroup", "--clear-groups", process.execPath, binPath, "--config", join(s.etc, "config.toml"), "serve", "--private", "--root-dir", join(s.base, "www")], { encoding: "utf8", timeout: 60_000 })
    expect(out.status).toBe(2)
    expect(out.stderr.trim().split("\n")).toEqual([`lxd-image-server: ${join(s.etc, "htpasswd")}: cannot read it: permission denied`])
  })
})

describe.skipIf(!ready)("init's config file", () => {
  it("writes the values it was given uncommented, the defaults commented, so that later commands find the same folders", async () => {
    const s = setup()
    const out = await s.init("--port", "8443")
    expect(out.code, out.stderr).toBe(0)
    const text = readFileSync(join(s.etc, "config.toml"), "utf8")
    for (const line of [
      `img_dir = ${JSON.stringify(join(s.base, "www", "images"))}`,
      `streams_dir = ${JSON.stringify(join(s.base, "www", "streams", "v1"))}`,
      `root_dir = ${JSON.stringify(join(s.base, "www"))}`,
      `ssl_dir = ${JSON.stringify(join(s.base, "ssl"))}`,
      `nginx_dir = ${JSON.stringify(join(s.base, "nginx"))}`,
      `hostname = ["images.test"]`
    ]) expect(text.split("\n"), line).toContain(line)
    expect(text).toMatch(/^port = 8443 +# /m)
    // the defaults stay commented
    expect(text).toMatch(/^# state_dir = "\/var\/lib\/lxd-image-server"$/m)
    expect(text).toMatch(/^# http_port = 80 /m)
    expect(text).not.toMatch(/^verbose/m)
    // every other key is there, commented with its default: each top-level key, and the [prune] table's
    for (const key of Object.keys(ConfigFile.fields).filter((k) => !["prune", "mirrors", "sync"].includes(k))) expect(text, key).toMatch(new RegExp(`^(# )?${key} = `, "m"))
    expect(text).toMatch(/^# \[prune\]$/m)
    for (const key of ["keep", "max_age_days", "grace_hours", "dangling_hours"]) expect(text, key).toMatch(new RegExp(`^# ${key} = `, "m"))
    // update and status, given only the config file (and a state folder of their own), use init's folders
    const config = ["--log-file", join(s.base, "lis.log"), "--config", join(s.etc, "config.toml")]
    const state = ["--state-dir", join(s.base, "state")]
    const update = await runBinAsync([...config, "update", ...state])
    expect(update.code, update.stderr).toBe(0)
    const status = await runBinAsync([...config, "status", ...state])
    expect(status.stdout).toMatch(/^catalog +generation 0, written /m)
  })
})
