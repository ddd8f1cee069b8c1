/** `prune` and `remove` as a user runs them, on real images, with no service running. */
import { describe, expect, it } from "@effect/vitest"
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { runBinAsync } from "../support/Bin.js"
import { haveTools } from "../support/Tools.js"
import { addContainer, makeWebRoot, type WebRoot } from "../support/Tree.js"
import { publishedVersions, sleep } from "../support/WatchProcess.js"

const versions = ["20240101_10:00", "20240102_10:00", "20240103_10:00", "20240104_10:00"]
const deb = (v: string) => `debian/bookworm/amd64/default/${v}`

const setUp = () => {
  const w = makeWebRoot()
  versions.forEach((v, i) => addContainer(w, deb(v), `d${i}`))
  addContainer(w, "alpine/3.20/amd64/default/20240101_10:00", "a1")
  return w
}
const common = (w: WebRoot) => ["--img-dir", w.images, "--streams-dir", w.streams, "--state-dir", join(w.root, "state")]
// not spawnSync: a worker blocked for long misses vitest's calls
const run = (w: WebRoot, command: string, ...args: Array<string>) =>
  runBinAsync(["--log-file", join(w.root, "l.log"), "--config", join(w.root, "none.toml"), command, ...common(w), ...args])
const catalogBytes = (w: WebRoot) => readFileSync(join(w.streams, "images.json"), "utf8")
const fingerprintOf = (w: WebRoot, v: string) => {
  const images = JSON.parse(catalogBytes(w))
  return images.products["debian:bookworm:amd64:default"].versions[v].items["lxd.tar.xz"]["combined_squashfs_sha256"] as string
}

describe.skipIf(!haveTools("tar", "xz", "mksquashfs"))("lxd-image-server prune and remove", () => {
  it("withdraws at once, keeps the files for the grace period (update does not bring them back), then deletes them", async () => {
    const w = setUp()
    expect((await run(w, "update")).code).toBe(0)
    expect(publishedVersions(w)).toHaveLength(5)
    // a tiny grace (fractional hours): 1.8 s
    const pruned = await run(w, "prune", "--keep", "2", "--grace", "0.0005")
    expect(pruned.code).toBe(0)
    expect(pruned.stderr).toMatch(/WARN .*grace period of 0.0005 h is shorter than the hour/)
    expect(pruned.stderr).toContain(`withdrew ${deb(versions[0]!)} from the catalog (retention: keep the newest 2 versions)`)
    expect(publishedVersions(w)).toEqual(["alpine/3.20/amd64/default/20240101_10:00", deb(versions[2]!), deb(versions[3]!)])
    expect(existsSync(join(w.version(deb(versions[0]!)), "rootfs.squashfs"))).toBe(true)
    // the safeguard rebuild honours the withdrawal while the files wait
    expect((await run(w, "update")).code).toBe(0)
    expect(publishedVersions(w)).toHaveLength(3)
    await sleep(2000)
    const second = await run(w, "prune", "--keep", "2", "--grace", "0.0005")
    expect(second.code).toBe(0)
    expect(second.stderr).toContain(`deleted ${w.version(deb(versions[0]!))}: withdrawn`)
    expect(existsSync(w.version(deb(versions[0]!)))).toBe(false)
    expect(existsSync(w.version(deb(versions[1]!)))).toBe(false)
    expect(existsSync(w.version(deb(versions[2]!)))).toBe(true)
    // uploaded again after the deletion: new, published
    addContainer(w, deb(versions[0]!), "again")
    expect((await run(w, "update")).code).toBe(0)
    expect(publishedVersions(w)).toContain(deb(versions[0]!))
  }, 90_000)

  it("falls back to the per-user state folder when the given one cannot be made, even where mkdir says ENOENT under a parent that exists", async () => {
    const w = setUp()
    expect((await run(w, "update")).code).toBe(0)
    const home = join(w.root, "xdg")
    // /proc/…: Node's recursive mkdir retried it forever, at full CPU, with no word
    const pruned = await runBinAsync(
      ["--log-file", join(w.root, "l.log"), "--config", join(w.root, "none.toml"), "prune", "--img-dir", w.images, "--streams-dir", w.streams, "--state-dir", "/proc/lis-no-such/state", "--keep", "2", "--dry-run"],
      { env: { XDG_STATE_HOME: home } }
    )
    expect(pruned.code, pruned.stderr).toBe(0)
    expect(pruned.stderr).toContain(`state folder /proc/lis-no-such/state is not writable: using ${join(home, "lxd-image-server")}`)
  }, 30_000)

  it("deletes a withdrawn version's files after the grace it was withdrawn with, whoever carries the deletion out", async () => {
    const w = setUp()
    expect((await run(w, "update")).code).toBe(0)
    const pruned = await run(w, "prune", "--keep", "3", "--grace", "0.0005")
    expect(pruned.stderr).toContain(`withdrew ${deb(versions[0]!)} from the catalog (retention: keep the newest 3 versions); its files are deleted after 0.0005 h`)
    const status = await runBinAsync(["--config", join(w.root, "none.toml"), "status", "--json", ...common(w)])
    const due = JSON.parse(status.stdout).pending_deletions[0]
    expect(Date.parse(due.due_at) - Date.parse(due.withdrawn_at)).toBe(1800)
    await sleep(2000)
    // another run with the default grace (6 h): the withdrawal's own grace is over
    const later = await run(w, "prune", "--keep", "3")
    expect(later.code).toBe(0)
    expect(later.stderr).toContain(`deleted ${w.version(deb(versions[0]!))}: withdrawn`)
    expect(existsSync(w.version(deb(versions[0]!)))).toBe(false)
  }, 60_000)

  it("--dry-run says what it would do and changes nothing", async () => {
    const w = setUp()
    expect((await run(w, "update")).code).toBe(0)
    const before = catalogBytes(w)
    const dry = await run(w, "prune", "--keep", "1", "--dry-run")
    expect(dry.code).toBe(0)
    expect(dry.stderr).toContain(`would withdraw ${deb(versions[0]!)} (retention: keep the newest 1 version)`)
    expect(catalogBytes(w)).toBe(before)
    expect(existsSync(join(w.root, "state", "withdrawn.jsonl"))).toBe(false)
  })

  it("remove takes PRODUCT@VERSION and fingerprints (any 12 digits of one); bad input is one line, exit 2, nothing changed", async () => {
    const w = setUp()
    expect((await run(w, "update")).code).toBe(0)
    const before = catalogBytes(w)
    const bad: Array<[Array<string>, RegExp]> = [
      [["prune", "--keep", "0"], /--keep must be at least 1/],
      [["prune", "--max-age", "-1"], /--max-age must be a number of days above 0/],
      [["prune", "--grace", "-2"], /--grace must be a number of hours of at least 0, not -2/],
      [["prune", "--dangling", "0"], /--dangling must be a number of hours above 0, not 0/],
      [["remove", "debian:bookworm:amd64:default@20990101_10:00"], /no published version debian:bookworm:amd64:default@20990101_10:00/],
      [["remove", "deadbeefdeadbeef"], /no published version with fingerprint deadbeefdeadbeef/],
      [["remove", "bookworm"], /neither PRODUCT@VERSION .* nor a fingerprint/],
      // one good, one bad: nothing is withdrawn
      [["remove", `debian:bookworm:amd64:default@${versions[0]}`, "nope:x:y:z@1"], /no published version nope:x:y:z@1/]
    ]
    for (const [args, message] of bad) {
      const [command, ...rest] = args
      const out = await run(w, command!, ...rest)
      expect(out.code, args.join(" ")).toBe(2)
      expect(out.stderr.trim().split("\n"), args.join(" ")).toHaveLength(1)
      expect(out.stderr).toMatch(message)
    }
    expect(catalogBytes(w)).toBe(before)
    const fp = fingerprintOf(w, versions[3]!)
    const removed = await run(w, "remove", `debian:bookworm:amd64:default@${versions[1]}`, fp.slice(0, 12))
    expect(removed.code).toBe(0)
    expect(publishedVersions(w)).toEqual(["alpine/3.20/amd64/default/20240101_10:00", deb(versions[0]!), deb(versions[2]!)])
    // withdrawn already: said, not an error
    const again = await run(w, "remove", `debian:bookworm:amd64:default@${versions[1]}`)
    expect(again.code).toBe(0)
    expect(again.stderr).toContain("withdrawn already")
  }, 120_000)

  it("--dangling deletes hidden upload folders and refused versions unchanged for that long, nothing newer", async () => {
    const w = setUp()
    const old = (Date.now() - 3 * 3_600_000) / 1000
    const staging = w.version("debian/bookworm/amd64/default/.20240105_10:00")
    mkdirSync(staging, { recursive: true })
    writeFileSync(join(staging, "rootfs.squashfs"), "half an upload")
    utimesSync(join(staging, "rootfs.squashfs"), old, old)
    utimesSync(staging, old, old)
    const fresh = w.version("debian/bookworm/amd64/default/.20240106_10:00")
    mkdirSync(fresh, { recursive: true })
    writeFileSync(join(fresh, "rootfs.squashfs"), "an upload going on")
    const broken = w.version("debian/bookworm/amd64/default/20240107_10:00")
    mkdirSync(broken, { recursive: true })
    writeFileSync(join(broken, "rootfs.squashfs"), "no metadata")
    utimesSync(join(broken, "rootfs.squashfs"), old, old)
    utimesSync(broken, old, old)
    expect((await run(w, "update")).code).toBe(0)
    const out = await run(w, "prune", "--dangling", "2")
    expect(out.code).toBe(0)
    expect(existsSync(staging)).toBe(false)
    expect(existsSync(broken)).toBe(false)
    expect(existsSync(fresh)).toBe(true)
    expect(publishedVersions(w)).toHaveLength(4)
  })

  it("a bad [prune] table in the config file stops it with the key in full and its line", async () => {
    const w = setUp()
    const config = join(w.root, "bad.toml")
    const cases: Array<[string, RegExp]> = [
      ['compat = "both"\n[prune]\nkeep = 0\n', /line 3: prune\.keep: Expected a number greater than or equal to 1, actual 0/],
      ["[prune]\nkepp = 1\n", /line 2: unknown key 'prune\.kepp' \(known keys: keep, max_age_days, grace_hours, dangling_hours\)/]
    ]
    for (const [text, message] of cases) {
      writeFileSync(config, text)
      const { code, stderr } = await runBinAsync(["--log-file", join(w.root, "l.log"), "--config", config, "prune", ...common(w)])
      expect(code).not.toBe(0)
      expect(stderr.trim()).toMatch(message)
      expect(stderr.trim().split("\n")).toHaveLength(1)
    }
  }, 60_000)
})
