/**
 * `sync` with the real parts: an upstream tree made by `incus-simplestreams add` (flat, content-addressed, Incus
 * items only) served by nginx, and one served by our own `serve`; the local copies served by nginx and read by
 * `lxc` and `incus`; the LXD daemon launching a busybox container from a local copy; a corrupted upstream file;
 * a sync killed halfway and run again; bad URLs and certificates; `watch` syncing on its own from a
 * `[sync.NAME]` table. Everything stays on 127.0.0.1.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { client, type RunningLxd, startLxd } from "../e2e/support/Clients.js"
import { launches, makeLaunchable } from "../e2e/support/Launch.js"
import { freePort, waitForPort } from "../e2e/support/Net.js"
import { mainConfig, runNginx, type RunningNginx, startStaticNginx } from "../e2e/support/Nginx.js"
import { makeTestCert, type TestCert } from "../e2e/support/Tls.js"
import { binPath, runBinAsync } from "../support/Bin.js"
import { metadataYaml, tempDir, writeBusyboxSquashfs, writeMetadataTarball, writeQcow2, writeRootTarXz, writeUnifiedTarball } from "../support/Images.js"
import { haveRoot, haveTools } from "../support/Tools.js"
import { makeWebRoot, type WebRoot } from "../support/Tree.js"
import { readCatalog, startWatch, waitFor } from "../support/WatchProcess.js"

const ready = haveTools("incus-simplestreams", "nginx", "openssl", "lxc", "incus", "mksquashfs", "tar", "xz", "gzip", "busybox")
const withDaemon = ready && haveTools("lxd") && haveRoot()

const sha = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex")

/** What a client lists of a remote: fingerprint and type, sorted. */
const listed = (dir: string, name: "lxc" | "incus", remote: string) =>
  client(dir, name).listImages(remote).map((i) => `${i.fingerprint} ${i.type}`).sort()

/** The incus-simplestreams `add` of each image, run in the tree's root as it wants. */
const incusAdd = (root: string, ...files: Array<string>) => execFileSync("incus-simplestreams", ["add", ...files], { cwd: root, stdio: "pipe" })

/** nginx over `root` logging each request's status, path, Range header and bytes sent; image files sent at `rate`. */
const startLoggingNginx = async (dir: string, root: string, tls: TestCert, rate = "0") => {
  mkdirSync(dir, { recursive: true })
  const port = await freePort()
  const nginx = await runNginx(dir, mainConfig(dir, `
  log_format sync '$status $uri "$http_range" $body_bytes_sent';
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    access_log ${dir}/requests.log sync;
    root ${root};
    location /images/ { limit_rate ${rate}; }
  }`), port)
  const requests = () =>
    (existsSync(join(dir, "requests.log")) ? readFileSync(join(dir, "requests.log"), "utf8") : "")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => {
        const [, status, uri, range, bytes] = /^(\d+) (\S+) "([^"]*)" (\d+)$/.exec(l) ?? []
        return { status: Number(status), uri: uri ?? "", range: range === "-" ? "" : range ?? "", bytes: Number(bytes) }
      })
  return { ...nginx, requests }
}

describe.skipIf(!ready)("sync from an upstream server", () => {
  let work: string
  let tls: TestCert
  let upstream: string
  let nginx: Awaited<ReturnType<typeof startLoggingNginx>>
  let lxd: RunningLxd | undefined
  const servers: Array<RunningNginx> = []
  /** The upstream's files, by what they are. */
  const up = { bigMeta: "", big: "", squashfs: "" }
  const bigSize = 24 * 1024 * 1024

  const cli = (...args: Array<string>) => runBinAsync(["--log-file", join(work, "cli.log"), "--config", join(work, "none.toml"), ...args])
  const syncInto = (w: WebRoot, url: string, ...args: Array<string>) =>
    cli("sync", url, "--img-dir", w.images, "--streams-dir", w.streams, "--state-dir", join(w.root, "state"), ...args)
  /** A local copy served by nginx, added as `remote` in both clients. */
  const serveCopy = async (w: WebRoot, remote: string) => {
    chmodSync(w.root, 0o755)
    const nginxCopy = await startStaticNginx(tempDir("lis-sync-nginx-"), w.root, tls)
    servers.push(nginxCopy)
    for (const c of ["lxc", "incus"] as const) client(work, c).addRemote(remote, nginxCopy.url, tls.cert)
  }

  beforeAll(async () => {
    work = tempDir("lis-sync-")
    chmodSync(work, 0o755) // nginx workers run as www-data
    tls = makeTestCert(work)
    // the upstream, made by incus-simplestreams: two busybox versions (the newer one a container and a VM on one
    // metadata file), a unified image, and a big VM for the interrupted sync
    upstream = join(work, "incus-upstream")
    mkdirSync(upstream)
    const files = join(work, "upstream-files")
    const busybox = (creationDate: number) => metadataYaml({ os: "Busybox", release: "1.36", creationDate, properties: { architecture: "amd64" } })
    writeMetadataTarball(join(files, "old-meta.tar.xz"), busybox(1704016800))
    writeBusyboxSquashfs(join(files, "old.squashfs"), "old")
    writeMetadataTarball(join(files, "meta.tar.xz"), busybox(1704103200))
    writeBusyboxSquashfs(join(files, "new.squashfs"), "new")
    writeQcow2(join(files, "new.qcow2"), "vm")
    writeUnifiedTarball(join(files, "tiny.tar.gz"), { yaml: metadataYaml({ os: "Tiny", release: "1.0", properties: { architecture: "amd64" } }) })
    writeMetadataTarball(join(files, "big-meta.tar.xz"), metadataYaml({ os: "Big", release: "1", properties: { architecture: "amd64" } }))
    writeQcow2(join(files, "big.qcow2"), "big", 16)
    writeFileSync(join(files, "big.qcow2"), Buffer.concat([readFileSync(join(files, "big.qcow2")).subarray(0, 24), randomBytes(bigSize - 24)]))
    incusAdd(upstream, join(files, "old-meta.tar.xz"), join(files, "old.squashfs"))
    incusAdd(upstream, join(files, "meta.tar.xz"), join(files, "new.squashfs"))
    incusAdd(upstream, join(files, "meta.tar.xz"), join(files, "new.qcow2"))
    incusAdd(upstream, join(files, "tiny.tar.gz"))
    incusAdd(upstream, join(files, "big-meta.tar.xz"), join(files, "big.qcow2"))
    up.bigMeta = `/images/${sha(join(files, "big-meta.tar.xz"))}.incus.tar.xz`
    up.big = `/images/${sha(join(files, "big-meta.tar.xz"))}.qcow2`
    up.squashfs = `/images/${sha(join(files, "meta.tar.xz"))}.squashfs`
    chmodSync(upstream, 0o755)
    nginx = await startLoggingNginx(join(work, "nginx-upstream"), upstream, tls, "4m")
    for (const c of ["lxc", "incus"] as const) client(work, c).addRemote("upstream", nginx.url, tls.cert)
    if (withDaemon) {
      lxd = await startLxd(work)
      makeLaunchable(work)
    }
  }, 180_000)

  afterAll(async () => {
    await lxd?.stop()
    for (const s of servers) await s.stop()
    await nginx?.stop()
  })

  it("copies an incus-simplestreams tree; both clients list upstream's fingerprints from the copy, and the LXD daemon launches one", async () => {
    const w = makeWebRoot()
    const dry = await syncInto(w, nginx.url, "--cert", tls.cert, "--dry-run")
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout.split("\n").filter((l) => l.startsWith("would fetch"))).toHaveLength(4)
    expect(dry.stdout).toMatch(/would fetch Busybox:1\.36:default:amd64 \d{12} into .*\/images\/busybox\/1\.36\/amd64\/default\/\d{12}: incus\.tar\.xz, disk\.qcow2, rootfs\.squashfs/)
    expect(readdirSync(w.images)).toEqual([])

    const synced = await syncInto(w, nginx.url, "--cert", tls.cert)
    expect(synced.code, synced.stderr).toBe(0)
    expect(synced.stderr).toContain("4 versions fetched")
    const want = listed(work, "incus", "upstream")
    expect(want).toHaveLength(5)
    // LXD reads no Incus-only item: upstream lists nothing for it; the copy serves both clients
    expect(listed(work, "lxc", "upstream")).toEqual([])
    await serveCopy(w, "copy")
    expect(listed(work, "incus", "copy")).toEqual(want)
    expect(listed(work, "lxc", "copy")).toEqual(want)
    // upstream's aliases are the copy's: Busybox/1.36/default there, as the tree writes it (lower case) here
    const copied = client(work, "incus").listImages("copy").flatMap((i) => (i.aliases ?? []).map((a) => a.name))
    expect(copied).toEqual(expect.arrayContaining(["busybox/1.36/default", "busybox/1.36", "tiny/1.0/default"]))

    // fetches only what is missing: nothing, the second time
    const before = nginx.requests().filter((r) => r.uri.startsWith("/images/")).length
    const again = await syncInto(w, nginx.url, "--cert", tls.cert)
    expect(again.code, again.stderr).toBe(0)
    expect(again.stderr).toContain("0 versions fetched")
    expect(again.stderr).toContain("4 here already")
    expect(nginx.requests().filter((r) => r.uri.startsWith("/images/")).length).toBe(before)
    // a sync stopped after placing the versions, before publishing them: the next one publishes them
    const catalog = readFileSync(join(w.streams, "images.json"), "utf8")
    rmSync(w.streams, { recursive: true })
    const resumed = await syncInto(w, nginx.url, "--cert", tls.cert)
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(resumed.stderr).toContain("0 versions fetched")
    expect(readFileSync(join(w.streams, "images.json"), "utf8")).toBe(catalog)

    if (lxd) {
      const newest = want.find((l) => l.endsWith(" container") && client(work, "incus").listImages("copy").some((i) => `${i.fingerprint} ${i.type}` === l && i.properties["os"] === "Busybox" && (i.aliases ?? []).some((a) => a.name === "busybox/1.36")))!
      expect(launches(work, "copy:busybox/1.36")).toBe(newest.split(" ")[0])
    }
  }, 300_000)

  it("refuses a corrupted upstream file by its URL, places the rest, and exits non-zero", async () => {
    const w = makeWebRoot()
    const file = join(upstream, up.squashfs)
    const original = readFileSync(file)
    const originalSha = sha(file)
    const flipped = Buffer.from(original)
    flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 0xff
    writeFileSync(file, flipped)
    try {
      const synced = await syncInto(w, nginx.url, "--cert", tls.cert, "--filter", "os=busybox", "--filter", "os=tiny")
      expect(synced.code).toBe(1)
      expect(synced.stderr).toContain(`${nginx.url}${up.squashfs}: sha256 is ${sha(file)}, the catalog says ${originalSha}`)
      expect(synced.stderr).toMatch(/1 failure \(each said above\); the rest was copied/)
    } finally {
      writeFileSync(file, original)
    }
    // the bad version is not there at all, not even its bad file as a part; the others are published
    const versions = readdirSync(join(w.images, "busybox", "1.36", "amd64", "default"))
    expect(versions.filter((v) => !v.startsWith("."))).toHaveLength(1)
    const staging = versions.filter((v) => v.startsWith("."))
    expect(staging).toHaveLength(1)
    expect(readdirSync(join(w.images, "busybox", "1.36", "amd64", "default", staging[0]!)).map((n) => n.replace(/\.part$/, ""))).not.toContain(originalSha)
    const catalog = readCatalog(w)!
    expect(Object.keys(catalog.images.products).sort()).toEqual(["busybox:1.36:amd64:default", "tiny:1.0:amd64:default"])
    // upstream mended, the next sync fetches what failed
    const mended = await syncInto(w, nginx.url, "--cert", tls.cert, "--filter", "os=busybox", "--filter", "os=tiny")
    expect(mended.code, mended.stderr).toBe(0)
    expect(mended.stderr).toContain("1 version fetched")
  }, 300_000)

  it("adds a VM to a version it copied as a container only, file by file, fetching nothing twice", async () => {
    const w = makeWebRoot()
    const containers = await syncInto(w, nginx.url, "--cert", tls.cert, "--filter", "os=busybox", "--filter", "type=container", "--keep", "1")
    expect(containers.code, containers.stderr).toBe(0)
    const folder = join(w.images, "busybox", "1.36", "amd64", "default")
    const [version] = readdirSync(folder)
    expect(readdirSync(join(folder, version!)).sort()).toEqual(["image.yaml", "incus.tar.xz", "rootfs.squashfs"])
    const earlier = nginx.requests().length
    const both = await syncInto(w, nginx.url, "--cert", tls.cert, "--filter", "os=busybox", "--keep", "1")
    expect(both.code, both.stderr).toBe(0)
    expect(readdirSync(folder)).toEqual([version])
    expect(readdirSync(join(folder, version!)).sort()).toEqual(["disk.qcow2", "image.yaml", "incus.tar.xz", "rootfs.squashfs"])
    expect(nginx.requests().slice(earlier).filter((r) => r.uri.startsWith("/images/")).map((r) => r.uri)).toEqual([expect.stringMatching(/\.qcow2$/)])
    const types = Object.values(readCatalog(w)!.images.products["busybox:1.36:amd64:default"]!.versions[version!]!.items).map((i) => i["ftype"]).sort()
    expect(types).toEqual(["disk-kvm.img", "incus.tar.xz", "lxd.tar.xz", "squashfs"])
  }, 120_000)

  it("a sync killed halfway resumes the file it was fetching with a Range request, and fetches nothing twice", async () => {
    const w = makeWebRoot()
    const earlier = nginx.requests().length
    const folder = join(w.images, "big", "1", "amd64", "default")
    const args = ["--log-file", join(work, "cli.log"), "--config", join(work, "none.toml"), "sync", nginx.url, "--cert", tls.cert, "--filter", "os=big",
      "--img-dir", w.images, "--streams-dir", w.streams, "--state-dir", join(w.root, "state")]
    const first: ChildProcess = spawn(process.execPath, [binPath, ...args], { stdio: "ignore" })
    const exited = new Promise<void>((resolve) => first.once("exit", () => resolve()))
    const part = () => {
      if (!existsSync(folder)) return 0
      const staging = readdirSync(folder).find((n) => n.startsWith("."))
      const parts = staging === undefined ? [] : readdirSync(join(folder, staging)).filter((n) => n.endsWith(".part"))
      return Math.max(0, ...parts.map((p) => statSync(join(folder, staging!, p)).size).filter((s) => s > 1024 * 1024))
    }
    // upstream sends 4 MiB/s: killed (as by a power cut) once a few MiB of the 24 are here
    await waitFor("the big file to be on its way", () => part() >= 6 * 1024 * 1024, 60_000)
    first.kill("SIGKILL")
    await exited
    const had = part()
    expect(had).toBeLessThan(bigSize)
    const second = await cli(...args.slice(4))
    expect(second.code, second.stderr).toBe(0)
    expect(second.stderr).toContain("1 version fetched")
    const version = readdirSync(folder).filter((n) => !n.startsWith("."))
    expect(version).toHaveLength(1)
    expect(readdirSync(folder).filter((n) => n.startsWith("."))).toEqual([])
    expect(statSync(join(folder, version[0]!, "disk.qcow2")).size).toBe(bigSize)
    // the metadata file once; the disk twice: whole at first, then from where the part ended
    const requests = nginx.requests().slice(earlier)
    expect(requests.filter((r) => r.uri === up.bigMeta).map((r) => r.status)).toEqual([200])
    const disk = requests.filter((r) => r.uri === up.big)
    expect(disk.map((r) => r.status)).toEqual([200, 206])
    const from = Number(/^bytes=(\d+)-$/.exec(disk[1]!.range)?.[1])
    expect(from).toBeGreaterThanOrEqual(had)
    expect(disk[1]!.bytes).toBe(bigSize - from)
    expect(readCatalog(w)!.images.products["big:1:amd64:default"]).toBeDefined()
  }, 300_000)

  it.skipIf(!haveTools("script"))("on a terminal, draws the progress bar while it downloads", () => {
    const w = makeWebRoot()
    const args = ["--log-file", join(work, "cli.log"), "--config", join(work, "none.toml"), "sync", nginx.url, "--cert", tls.cert, "--filter", "os=big",
      "--img-dir", w.images, "--streams-dir", w.streams, "--state-dir", join(w.root, "state")]
    const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`
    const run = spawnSync("script", ["-qfec", [process.execPath, binPath, ...args].map(quote).join(" "), "/dev/null"], { encoding: "utf8", timeout: 120_000 })
    expect(run.status, run.stdout).toBe(0)
    // the disk comes at 4 MiB/s: drawn on its way, its bytes against the whole
    const draws = run.stdout.split("\r").filter((d) => /[01]\/2 files {2}[\d.]+ (KiB|MiB) \/ 24\.0 MiB/.test(d))
    expect(draws.length, run.stdout).toBeGreaterThan(1)
    expect(run.stdout).toContain("1 version fetched")
  }, 120_000)

  it("says in one line what is wrong with an upstream that cannot be reached, trusted or read", async () => {
    const w = makeWebRoot()
    const closed = `https://127.0.0.1:${await freePort()}`
    const unreachable = await syncInto(w, closed)
    expect(unreachable.code).toBe(1)
    expect(unreachable.stderr).toContain(`${closed}/streams/v1/index.json: connection refused`)
    const other = makeTestCert(tempDir("lis-other-cert-"))
    const mismatch = await syncInto(w, nginx.url, "--cert", other.cert)
    expect(mismatch.code).toBe(1)
    expect(mismatch.stderr).toContain(`${nginx.url}/streams/v1/index.json: the server's certificate is not trusted by the certificate in ${other.cert}`)
    const noCert = await syncInto(w, nginx.url)
    expect(noCert.stderr).toContain("not trusted by the system's certificate authorities (give --cert)")
    // a web server that is no image server
    const html = join(work, "html-root")
    mkdirSync(join(html, "streams", "v1"), { recursive: true })
    writeFileSync(join(html, "streams", "v1", "index.json"), "<html><body>It works!</body></html>\n")
    chmodSync(html, 0o755)
    const plain = await startStaticNginx(tempDir("lis-sync-html-"), html, tls)
    servers.push(plain)
    const notStreams = await syncInto(w, plain.url, "--cert", tls.cert)
    expect(notStreams.code).toBe(1)
    expect(notStreams.stderr).toContain(`${plain.url}/streams/v1/index.json: not a simplestreams image server: not JSON`)
    for (const [args, line] of [
      [["--filter", "colour=red"], 'sync: filter "colour=red": expected KEY=VALUE with KEY one of os, release, arch, variant, type'],
      [["--keep", "0"], "sync: --keep 0: keep at least 1 version"]
    ] as const) {
      const bad = await syncInto(w, nginx.url, ...args)
      expect(bad.code).toBe(2)
      expect(bad.stderr).toContain(line)
    }
    const ftp = await syncInto(w, "ftp://127.0.0.1/")
    expect([ftp.code, ftp.stderr.trim()]).toEqual([2, 'lxd-image-server: sync: "ftp://127.0.0.1/" is not an https:// (or http://) URL'])
    expect(readdirSync(w.images)).toEqual([])
  }, 120_000)

  it("copies our own serve: the same layout, and the same fingerprints for both clients", async () => {
    const source = makeWebRoot()
    const version = (rel: string) => source.version(rel)
    writeMetadataTarball(join(version("busybox/1.36/amd64/default/20240101_10:00"), "lxd.tar.xz"), metadataYaml({ os: "Busybox", release: "1.36" }))
    writeBusyboxSquashfs(join(version("busybox/1.36/amd64/default/20240101_10:00"), "rootfs.squashfs"), "ours")
    writeQcow2(join(version("busybox/1.36/amd64/default/20240101_10:00"), "disk.qcow2"), "ours")
    writeMetadataTarball(join(version("alpine/3.20/arm64/default/20240103_10:00"), "incus.tar.xz"), metadataYaml({ architecture: "aarch64", os: "Alpine", release: "3.20" }))
    writeRootTarXz(join(version("alpine/3.20/arm64/default/20240103_10:00"), "rootfs.tar.xz"), "alpine")
    writeUnifiedTarball(join(version("tiny/1.0/amd64/default/20240301_10:00"), "export.tar.gz"), { yaml: metadataYaml({ os: "Tiny", release: "1.0" }) })
    writeFileSync(join(version("tiny/1.0/amd64/default/20240301_10:00"), "image.yaml"), "aliases: [tiny-latest]\ndistro_name: TinyOS\nrequirements:\n  secureboot: \"false\"\n")
    const base = tempDir("lis-sync-serve-")
    const config = join(base, "config.toml")
    writeFileSync(config, `state_dir = "${join(base, "state")}"\npidfile = "${join(base, "serve.pid")}"\nsettle = 0.5\n`)
    const port = await freePort()
    const serve = spawn(process.execPath, [binPath, "--log-file", join(base, "serve.log"), "--config", config, "serve", "--root-dir", source.root, "--ssl-dir", join(base, "ssl"), "--host", "127.0.0.1", "--port", String(port), "--hostname", "127.0.0.1"], { stdio: "ignore" })
    const stopped = new Promise<void>((r) => serve.once("exit", () => r()))
    try {
      await waitForPort(port)
      await waitFor("serve's catalog", () => (readCatalog(source) ? Object.keys(readCatalog(source)!.images.products).length === 3 : false), 60_000)
      const url = `https://127.0.0.1:${port}`
      const cert = join(base, "ssl", "lxd-image-server.crt")
      for (const c of ["lxc", "incus"] as const) client(work, c).addRemote("ours", url, cert)
      const w = makeWebRoot()
      const synced = await syncInto(w, url, "--cert", cert)
      expect(synced.code, synced.stderr).toBe(0)
      const folders = (root: string) => execFileSync("find", [".", "-mindepth", "5", "-maxdepth", "5", "-type", "d"], { cwd: root }).toString().split("\n").filter((l) => l !== "").sort()
      expect(folders(w.images)).toEqual(folders(source.images))
      await serveCopy(w, "ours-copy")
      for (const c of ["lxc", "incus"] as const) {
        const want = listed(work, c, "ours")
        expect(want.length, c).toBe(4)
        expect(listed(work, c, "ours-copy"), c).toEqual(want)
      }
      const tiny = client(work, "lxc").listImages("ours-copy").find((i) => i.properties["os"] === "TinyOS")!
      expect(tiny.properties["requirements.secureboot"]).toBe("false")
      expect((tiny.aliases ?? []).map((a) => a.name)).toContain("tiny-latest")
    } finally {
      serve.kill("SIGTERM")
      await stopped
      rmSync(base, { recursive: true, force: true })
    }
  }, 300_000)

  it("watch syncs on its own from a [sync.NAME] table: the newest container of each product", async () => {
    const w = makeWebRoot()
    const config = join(w.root, "config.toml")
    writeFileSync(config, [
      "[sync.upstream]",
      `url = "${nginx.url}"`,
      `cert = "${tls.cert}"`,
      'filters = ["type=container"]',
      "keep = 1",
      "interval = 3600",
      ""
    ].join("\n"))
    const watch = startWatch(w, { config })
    try {
      const want = client(work, "incus").listImages("upstream").filter((i) => i.type === "container")
      const newest = want.filter((i) => !want.some((o) => o.properties["os"] === i.properties["os"] && o.properties["serial"]! > i.properties["serial"]!))
      const fingerprints = () => {
        const catalog = readCatalog(w)
        if (!catalog) return []
        return Object.values(catalog.images.products).flatMap((p) => Object.values(p.versions).flatMap((v) => Object.values(v.items).flatMap((i) => [i["combined_squashfs_sha256"], String(i["ftype"]).endsWith("_combined.tar.gz") ? i.sha256 : undefined]))).filter((f): f is string => typeof f === "string")
      }
      await waitFor("watch to sync and publish", () => new Set(fingerprints()).size === newest.length, 120_000).catch((e: Error) => {
        throw new Error(`${e.message}\n${watch.log().slice(-4000)}`)
      })
      expect([...new Set(fingerprints())].sort()).toEqual(newest.map((i) => i.fingerprint).sort())
      expect(watch.log()).toMatch(/sync upstream: https:\/\/127\.0\.0\.1:\d+\/: 2 versions fetched/)
    } finally {
      await watch.stop()
    }
  }, 180_000)
})
