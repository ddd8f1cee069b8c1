/**
 * End to end: real images, `update`, real nginx over TLS, and the real clients: `lxc` (LXD 5.0.2) and
 * `incus` (6.0.4) list every image with the right fingerprint and type, and the LXD daemon downloads one.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import { chmodSync, mkdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { runBin } from "../support/Bin.js"
import { tempDir } from "../support/Images.js"
import { haveRoot, haveTools } from "../support/Tools.js"
import { buildMixedTree, makeWebRoot, type WebRoot } from "../support/Tree.js"
import { client, type ListedImage, startLxd } from "./support/Clients.js"
import { type RunningNginx, startStaticNginx } from "./support/Nginx.js"
import { makeTestCert } from "./support/Tls.js"

const ready = haveTools("nginx", "openssl", "lxc", "incus", "lxd", "mksquashfs", "tar", "xz") && haveRoot()

const combinedOf = (dir: string, meta: string, rootfs: string) =>
  createHash("sha256").update(readFileSync(join(dir, meta))).update(readFileSync(join(dir, rootfs))).digest("hex")

describe.skipIf(!ready)("update, served by nginx, read by lxc and incus, downloaded by the LXD daemon", () => {
  let work: string
  let web: WebRoot
  let nginx: RunningNginx
  let expected: Map<string, { type: string; ftype: string; version: string; architecture: string }>

  beforeAll(async () => {
    work = tempDir("lis-e2e-")
    chmodSync(work, 0o755) // nginx workers run as www-data
    web = makeWebRoot()
    chmodSync(web.root, 0o755)
    buildMixedTree(web)
    const update = runBin(["--log-file", join(work, "update.log"), "update", "--img-dir", web.images, "--streams-dir", web.streams])
    expect(update.code, update.stderr).toBe(0)
    const deb = (v: string) => web.version(`debian/bookworm/amd64/default/${v}`)
    expected = new Map([
      [combinedOf(deb("20240101_10:00"), "lxd.tar.xz", "rootfs.squashfs"), { type: "container", ftype: "squashfs", version: "20240101_10:00", architecture: "x86_64" }],
      [combinedOf(deb("20240102_10:00"), "lxd.tar.xz", "rootfs.squashfs"), { type: "container", ftype: "squashfs", version: "20240102_10:00", architecture: "x86_64" }],
      [combinedOf(deb("20240102_10:00"), "lxd.tar.xz", "disk.qcow2"), { type: "virtual-machine", ftype: "disk-kvm.img", version: "20240102_10:00", architecture: "x86_64" }],
      [combinedOf(web.version("alpine/3.20/arm64/default/20240103_10:00"), "incus.tar.xz", "rootfs.tar.xz"), { type: "container", ftype: "root.tar.xz", version: "20240103_10:00", architecture: "aarch64" }],
      [combinedOf(web.version("fedora/40/amd64/cloud/20240104_10:00"), "lxd.tar.xz", "disk.qcow2"), { type: "virtual-machine", ftype: "disk-kvm.img", version: "20240104_10:00", architecture: "x86_64" }]
    ])
    const nginxDir = join(work, "nginx")
    mkdirSync(nginxDir)
    const tls = makeTestCert(work)
    nginx = await startStaticNginx(nginxDir, web.root, tls)
    for (const name of ["lxc", "incus"] as const) client(work, name).addRemote("test", nginx.url, tls.cert)
  }, 120_000)

  afterAll(async () => {
    await nginx?.stop()
  })

  const check = (images: ReadonlyArray<ListedImage>) => {
    // every image is there, and nothing else: no junk, no duplicate
    expect(images.map((i) => i.fingerprint).sort()).toEqual([...expected.keys()].sort())
    for (const image of images) {
      const want = expected.get(image.fingerprint)!
      expect({ type: image.type, ftype: image.properties["type"], serial: image.properties["serial"], architecture: image.architecture })
        .toEqual({ type: want.type, ftype: want.ftype, serial: want.version, architecture: want.architecture })
    }
    // debian/bookworm names the newest container, never the older one
    const named = (alias: string, type: string) => images.filter((i) => i.type === type && (i.aliases ?? []).some((a) => a.name === alias))
    expect(named("debian/bookworm", "container").map((i) => i.properties["serial"])).toEqual(["20240102_10:00"])
    expect(named("debian/bookworm", "virtual-machine").map((i) => i.properties["serial"])).toEqual(["20240102_10:00"])
    expect(named("debian/bookworm/default", "container").map((i) => i.properties["serial"])).toEqual(["20240102_10:00"])
    expect(named("fedora/40/cloud", "virtual-machine")).toHaveLength(1)
  }

  it("lxc image list shows every image with its fingerprint and type", () => {
    check(client(work, "lxc").listImages("test"))
  })

  it("incus image list shows every image with its fingerprint and type", () => {
    check(client(work, "incus").listImages("test"))
  })

  it("the LXD daemon downloads debian/bookworm and accepts its fingerprint", async () => {
    const lxd = await startLxd(work)
    try {
      const lxc = client(work, "lxc")
      lxc.run(["image", "copy", "test:debian/bookworm", "local:"])
      const local = JSON.parse(lxc.run(["image", "list", "local:", "--format", "json"])) as ReadonlyArray<ListedImage>
      const newest = [...expected].find(([, v]) => v.version === "20240102_10:00" && v.type === "container")![0]
      expect(local.map((i) => i.fingerprint)).toEqual([newest])
      lxc.run(["image", "copy", "test:fedora/40/cloud", "local:", "--vm"])
      const vm = [...expected].find(([, v]) => v.version === "20240104_10:00")![0]
      expect((JSON.parse(lxc.run(["image", "list", "local:", "--format", "json"])) as ReadonlyArray<ListedImage>).map((i) => i.fingerprint).sort()).toEqual([newest, vm].sort())
    } finally {
      await lxd.stop()
    }
  }, 180_000)
})
