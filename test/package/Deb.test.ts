/**
 * The Debian package, built from the checkout with dpkg-buildpackage, checked by lintian, then installed with
 * apt into a pristine Debian 12 made with debootstrap (policy-rc.d keeps services from starting there), used,
 * and purged. Slow (a few minutes, most of it debootstrap the first time); the pristine root is kept as a
 * tarball in /var/cache/lxd-image-server-tests so that later runs on the same machine start from it.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { execFileSync, spawn, spawnSync } from "node:child_process"
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { tempDir } from "../support/Images.js"
import { haveRoot, haveTools } from "../support/Tools.js"
import { addContainer } from "../support/Tree.js"

const ready = haveTools("git", "dpkg-buildpackage", "dh", "lintian", "debootstrap", "mksquashfs") && haveRoot()
const repo = fileURLToPath(new URL("../..", import.meta.url))
const cache = "/var/cache/lxd-image-server-tests"
const pristine = join(cache, "bookworm-minbase.tar")

const sh = (command: string, args: ReadonlyArray<string>, options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) => {
  const r = spawnSync(command, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...options })
  if (r.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (${r.status}):\n${(r.stdout + r.stderr).slice(-4000)}`)
  return r.stdout
}

/** A long command, run without blocking the test worker (vitest talks to it while the command runs). */
const run = (command: string, args: ReadonlyArray<string>, options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) =>
  new Promise<string>((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-8000)))
    child.stderr.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-8000)))
    child.once("error", reject)
    child.once("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} ${args.join(" ")} failed (${code}):\n${out.slice(-4000)}`))))
  })

describe.skipIf(!ready)("the Debian package", () => {
  let work: string
  let deb: string

  beforeAll(async () => {
    work = tempDir("lis-deb-")
    // a clean checkout: the files git knows, as they are in the work tree
    const src = join(work, "src")
    mkdirSync(src)
    const files = sh("git", ["ls-files", "-co", "--exclude-standard"], { cwd: repo }).split("\n").filter((f) => f && existsSync(join(repo, f)))
    writeFileSync(join(work, "files"), files.join("\n"))
    execFileSync("tar", ["-c", "-C", repo, "-T", join(work, "files"), "-f", join(work, "src.tar")])
    execFileSync("tar", ["-x", "-C", src, "-f", join(work, "src.tar")])
    await run("dpkg-buildpackage", ["-us", "-uc", "-b"], { cwd: src })
    deb = join(work, readdirSync(work).find((f) => f.endsWith(".deb"))!)
  }, 600_000)

  it("builds, small for what it carries, and lintian reports no errors", async () => {
    const size = statSync(deb).size
    expect(size).toBeLessThan(40 * 1024 * 1024)
    const report = await run("lintian", ["--fail-on", "error", deb])
    expect(report).not.toMatch(/^E: /m)
  }, 300_000)

  describe("installed with apt into a pristine Debian 12", () => {
    let root: string
    const inRoot = (...args: Array<string>) => sh("chroot", [root, ...args], { env: { ...process.env, LC_ALL: "C" } })
    const mounted: Array<string> = []

    const aptEnv = { ...process.env, DEBIAN_FRONTEND: "noninteractive", LC_ALL: "C" }
    beforeAll(async () => {
      root = join(work, "root")
      if (!existsSync(pristine)) {
        const fresh = join(work, "debootstrap")
        await run("debootstrap", ["--variant=minbase", "bookworm", fresh, "http://deb.debian.org/debian"])
        mkdirSync(cache, { recursive: true })
        execFileSync("tar", ["-c", "-f", `${pristine}.part`, "-C", fresh, "."])
        execFileSync("mv", [`${pristine}.part`, pristine])
        rmSync(fresh, { recursive: true, force: true })
      }
      mkdirSync(root)
      execFileSync("tar", ["-x", "-f", pristine, "-C", root])
      for (const [what, type] of [["proc", "proc"], ["dev/pts", "devpts"]] as const) {
        sh("mount", ["-t", type, type, join(root, what)])
        mounted.push(join(root, what))
      }
      writeFileSync(join(root, "usr/sbin/policy-rc.d"), "#!/bin/sh\nexit 101\n")
      chmodSync(join(root, "usr/sbin/policy-rc.d"), 0o755)
      writeFileSync(join(root, "etc/resolv.conf"), readFileSync("/etc/resolv.conf"))
      execFileSync("cp", [deb, join(root, "tmp", "lxd-image-server.deb")])
      await run("chroot", [root, "apt-get", "update", "-qq"], { env: aptEnv })
      // systemd and man-db only so that `systemd-analyze verify` can run there, man page check included
      await run("chroot", [root, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "systemd", "man-db"], { env: aptEnv })
      await run("chroot", [root, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "/tmp/lxd-image-server.deb"], { env: aptEnv })
    }, 900_000)

    afterAll(() => {
      for (const m of mounted.reverse()) spawnSync("umount", ["-l", m])
      if (mounted.every((m) => !readFileSync("/proc/mounts", "utf8").includes(` ${m} `))) rmSync(work, { recursive: true, force: true })
    })

    it("runs, with lxdadm, the unit, the config, the man page and the nginx site in place", () => {
      const help = inRoot("lxd-image-server", "--help")
      expect(help).toContain("COMMANDS")
      expect(help).not.toContain("\u001b[")
      const passwd = inRoot("getent", "passwd", "lxdadm").trim().split(":")
      expect([passwd[0], passwd[5], passwd[6]]).toEqual(["lxdadm", "/home/lxdadm", "/bin/sh"])
      expect(statSync(join(root, "home/lxdadm/.ssh")).mode & 0o777).toBe(0o700)
      for (const f of ["lib/systemd/system/lxd-image-server.service", "etc/lxd-image-server/config.toml", "usr/share/man/man1/lxd-image-server.1.gz", "etc/logrotate.d/lxd-image-server", "etc/nginx/sites-available/lxd-image-server.conf", "etc/nginx/ssl/lxd-image-server.crt", "usr/share/bash-completion/completions/lxd-image-server", "usr/share/zsh/vendor-completions/_lxd-image-server", "usr/lib/lxd-image-server/lxd-image-server.watcher.cjs"]) {
        expect(existsSync(join(root, f)), f).toBe(true)
      }
      expect(readlinkSync(join(root, "etc/nginx/sites-enabled/lxd-image-server.conf"))).toBe("/etc/nginx/sites-available/lxd-image-server.conf")
      expect(statSync(join(root, "etc/nginx/ssl/lxd-image-server.key")).mode & 0o777).toBe(0o600)
      expect(inRoot("dpkg-query", "-W", "-f", "${Conffiles}", "lxd-image-server")).toContain("/etc/lxd-image-server/config.toml")
      const webRoot = statSync(join(root, "var/www/simplestreams/images"))
      expect(webRoot.mode & 0o777).toBe(0o755)
      expect(inRoot("stat", "-c", "%U:%G", "/var/www/simplestreams/images").trim()).toBe("lxdadm:www-data")
      // enabled (the link is absolute: read it, do not follow it on this host)
      expect(readlinkSync(join(root, "etc/systemd/system/multi-user.target.wants/lxd-image-server.service"))).toBe("/lib/systemd/system/lxd-image-server.service")
      inRoot("nginx", "-t")
    })

    it("installs bash completions that complete a subcommand's options", () => {
      const complete = (words: string) =>
        inRoot("bash", "-c", `source /usr/share/bash-completion/completions/lxd-image-server; COMP_WORDS=(${words}); COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 )); _lxd-image-server_bash_completions lxd-image-server; echo "\${COMPREPLY[*]}"`).trim()
      expect(complete("lxd-image-server up")).toBe("update")
      expect(complete("lxd-image-server update --im")).toBe("--img-dir --img_dir")
      expect(readFileSync(join(root, "usr/share/zsh/vendor-completions/_lxd-image-server"), "utf8")).toMatch(/^#compdef lxd-image-server\n/)
    })

    it("the unit passes systemd-analyze verify", () => {
      const r = spawnSync("chroot", [root, "systemd-analyze", "verify", "/lib/systemd/system/lxd-image-server.service"], { encoding: "utf8" })
      expect(r.status, r.stdout + r.stderr).toBe(0)
      expect(r.stdout + r.stderr).toBe("")
    })

    it("the installed command, as lxdadm, indexes a real tree at the default paths", () => {
      const images = join(root, "var/www/simplestreams/images")
      const dir = addContainer({ root: "", images, streams: "", version: (rel) => join(images, rel) }, "debian/bookworm/amd64/default/20240101_10:00", "deb")
      expect(existsSync(dir)).toBe(true)
      execFileSync("chmod", ["-R", "a+rX", images])
      sh("chroot", ["--userspec=lxdadm:www-data", root, "sh", "-c", "cd /tmp && lxd-image-server update"])
      const catalog = JSON.parse(readFileSync(join(root, "var/www/simplestreams/streams/v1/images.json"), "utf8"))
      expect(Object.keys(catalog.products)).toEqual(["debian:bookworm:amd64:default"])
      expect(Object.keys(catalog.products["debian:bookworm:amd64:default"].versions["20240101_10:00"].items).sort()).toEqual(["incus.tar.xz", "lxd.tar.xz", "rootfs.squashfs"])
      expect(statSync(join(root, "var/www/simplestreams/streams/v1/index.json")).mode & 0o777).toBe(0o644)
      // the catalog page beside streams/, pinning the certificate the package's init made
      expect(readFileSync(join(root, "var/www/simplestreams/index.html"), "utf8")).toContain("~/.config/lxc/servercerts/myimages.crt")
    })

    it("purge removes what the package made, and never the images", async () => {
      await run("chroot", [root, "apt-get", "purge", "-y", "-qq", "lxd-image-server"], { env: aptEnv })
      for (const gone of ["usr/bin/lxd-image-server", "etc/lxd-image-server", "var/lib/lxd-image-server", "var/log/lxd-image-server", "etc/nginx/sites-enabled/lxd-image-server.conf", "etc/nginx/sites-available/lxd-image-server.conf", "etc/nginx/ssl/lxd-image-server.key", "var/www/simplestreams/streams", "var/www/simplestreams/index.html"]) {
        expect(existsSync(join(root, gone)), gone).toBe(false)
      }
      expect(existsSync(join(root, "var/www/simplestreams/images/debian/bookworm/amd64/default/20240101_10:00/rootfs.squashfs"))).toBe(true)
      inRoot("nginx", "-t")
    })
  })
})
