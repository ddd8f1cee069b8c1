import { describe, expect, it } from "@effect/vitest"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { runBin } from "../support/Bin.js"
import { tempDir } from "../support/Images.js"
import { haveTools } from "../support/Tools.js"
import { addContainer, makeWebRoot } from "../support/Tree.js"

describe("lxd-image-server --help", () => {
  it("lists the global options and the update command", () => {
    const { code, stdout } = runBin(["--help"])
    expect(code).toBe(0)
    for (const text of ["--log-file", "--verbose", "--config", "update"]) expect(stdout).toContain(text)
    const sub = runBin(["update", "--help"])
    expect(sub.code).toBe(0)
    for (const text of ["--img-dir", "--streams-dir", "--compat", "both | lxd | incus"]) expect(sub.stdout).toContain(text)
  })
})

describe.skipIf(!haveTools("tar", "xz", "mksquashfs"))("lxd-image-server update", () => {
  it("writes the catalog, logs to stderr and the log file, and exits 0 even when a version is refused", () => {
    const w = makeWebRoot()
    addContainer(w, "debian/bookworm/amd64/default/20240101_10:00", "a")
    addContainer(w, "debian/bookworm/foo/default/20240101_10:00", "b")
    const log = join(w.root, "server.log")
    const { code, stderr } = runBin(["--log-file", log, "--config", join(w.root, "none.toml"), "update", "--img-dir", w.images, "--streams-dir", w.streams, "--compat", "lxd"])
    expect(code).toBe(0)
    expect(stderr).toMatch(/WARN +refused .*debian\/bookworm\/foo\/default\/20240101_10:00: unknown architecture folder 'foo'/)
    expect(stderr).toMatch(/INFO +wrote .*index\.json: 1 products, 1 versions, 1 refused/)
    expect(stderr).not.toContain("DEBUG")
    expect(readFileSync(log, "utf8")).toContain("unknown architecture folder 'foo'")
    const images = JSON.parse(readFileSync(join(w.streams, "images.json"), "utf8"))
    expect(Object.keys(images.products["debian:bookworm:amd64:default"].versions["20240101_10:00"].items).sort()).toEqual(["lxd.tar.xz", "rootfs.squashfs"])
  })

  it("accepts the original spellings --img_dir and --streams_dir, and --verbose adds debug lines", () => {
    const w = makeWebRoot()
    addContainer(w, "debian/bookworm/amd64/default/20240101_10:00", "a")
    const { code, stderr } = runBin(["--verbose", "--log-file", join(w.root, "l.log"), "update", "--img_dir", w.images, "--streams_dir", w.streams])
    expect(code).toBe(0)
    expect(stderr).toContain("DEBUG")
    expect(existsSync(join(w.streams, "index.json"))).toBe(true)
  })

  it("exits non-zero with one clear line when the images folder does not exist", () => {
    const w = makeWebRoot()
    const { code, stderr } = runBin(["--log-file", join(w.root, "l.log"), "update", "--img-dir", join(w.root, "missing"), "--streams-dir", w.streams])
    expect(code).not.toBe(0)
    expect(stderr.trim().split("\n")).toHaveLength(1)
    expect(stderr).toContain("missing")
    expect(stderr).not.toMatch(/\n\s+at /)
  })

  it("takes the folders from the config file, flags winning over it", () => {
    const w = makeWebRoot()
    addContainer(w, "debian/bookworm/amd64/default/20240101_10:00", "a")
    const config = join(w.root, "config.toml")
    writeFileSync(config, `img_dir = "${w.images}"\nstreams_dir = "${w.streams}"\ncompat = "incus"\nlog_file = "${join(w.root, "from-config.log")}"\n`)
    expect(runBin(["update"], { env: { LXD_IMAGE_SERVER_CONFIG: config } }).code).toBe(0)
    const items = () => Object.keys(JSON.parse(readFileSync(join(w.streams, "images.json"), "utf8")).products["debian:bookworm:amd64:default"].versions["20240101_10:00"].items).sort()
    expect(items()).toEqual(["incus.tar.xz", "rootfs.squashfs"])
    expect(existsSync(join(w.root, "from-config.log"))).toBe(true)
    expect(runBin(["--config", config, "update", "--compat", "both"]).code).toBe(0)
    expect(items()).toEqual(["incus.tar.xz", "lxd.tar.xz", "rootfs.squashfs"])
  })

  it("stops with the file, the line and what was expected for a bad config", () => {
    const dir = tempDir()
    const config = join(dir, "bad.toml")
    const cases: Array<[string, RegExp]> = [
      ['compat = "both"\nimg_dirr = "/x"\n', /config file .*bad\.toml, line 2: unknown key 'img_dirr'/],
      ['compat = "lxc"\n', /line 1: compat: Expected one of "both", "lxd", "incus", actual "lxc"/],
      ["verbose = yes\n", /line 1: not valid TOML/],
      ["img_dir = 5\n", /line 1: img_dir: Expected string, actual 5/],
      ['compat = "both"\n\nport = 70000\n', /line 3: port: Expected a number between 1 and 65535, actual 70000/],
      ['hostname = "images.example.com"\n', /line 1: hostname: Expected ReadonlyArray<hostname>, actual "images.example.com"/],
      ["settle = -1\n", /line 1: settle: Expected a non-negative number, actual -1/],
      ["[section]\nkey = 1\n", /line 1: unknown key 'section'/]
    ]
    for (const [text, message] of cases) {
      writeFileSync(config, text)
      const { code, stderr } = runBin(["--config", config, "update"], { cwd: dir })
      // bad input, as every command's exit codes have it (status's 1 means the service is not running)
      expect(code).toBe(2)
      expect(stderr.trim()).toMatch(message)
      expect(stderr.trim().split("\n")).toHaveLength(1)
    }
  })
})
