/**
 * End to end, with the real clients: a unified image (as `lxc image export` writes one) and names and
 * requirements from image.yaml, published by `update` and served by nginx, as `lxc` (LXD 5.0.2), `incus`
 * (6.0.4) and the LXD daemon see them. Everything stays on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { runBin } from "../support/Bin.js"
import { metadataYaml, tempDir, writeUnifiedTarball } from "../support/Images.js"
import { haveRoot, haveTools } from "../support/Tools.js"
import { addContainer, makeWebRoot, type WebRoot, writeSha256Sums } from "../support/Tree.js"
import { client, type ListedImage, type RunningLxd, startLxd } from "./support/Clients.js"
import { type RunningNginx, startStaticNginx } from "./support/Nginx.js"
import { makeTestCert } from "./support/Tls.js"

const ready = haveTools("nginx", "openssl", "lxc", "incus", "lxd", "mksquashfs", "tar", "xz", "gzip") && haveRoot()

const sha = (...files: Array<string>) => {
  const h = createHash("sha256")
  for (const f of files) h.update(readFileSync(f))
  return h.digest("hex")
}

describe.skipIf(!ready)("unified images and image.yaml with the real clients", () => {
  let work: string
  let web: WebRoot
  let lxd: RunningLxd
  let nginx: RunningNginx
  let unified: string
  let split: string

  beforeAll(async () => {
    work = tempDir("lis-e2e-pub-")
    chmodSync(work, 0o755) // nginx workers run as www-data
    web = makeWebRoot()
    chmodSync(web.root, 0o755)
    const u = web.version("tiny/1.0/amd64/default/20240301_10:00")
    writeUnifiedTarball(join(u, "export.tar.gz"), { yaml: metadataYaml({ os: "Tiny", release: "1.0" }) })
    writeFileSync(join(u, "image.yaml"), "aliases: [tiny-latest]\nrelease_aliases:\n  \"1.0\": one\ndistro_name: TinyOS\nrequirements:\n  secureboot: false\n")
    writeSha256Sums(u, ["export.tar.gz"])
    unified = sha(join(u, "export.tar.gz"))
    const s = addContainer(web, "debian/bookworm/amd64/default/20240101_10:00", "split")
    split = sha(join(s, "lxd.tar.xz"), join(s, "rootfs.squashfs"))
    const update = runBin(["--log-file", join(work, "update.log"), "update", "--img-dir", web.images, "--streams-dir", web.streams])
    expect(update.code, update.stderr).toBe(0)
    mkdirSync(join(work, "nginx"))
    const tls = makeTestCert(work)
    nginx = await startStaticNginx(join(work, "nginx"), web.root, tls)
    for (const name of ["lxc", "incus"] as const) client(work, name).addRemote("pub", nginx.url, tls.cert)
    lxd = await startLxd(work)
  }, 180_000)

  afterAll(async () => {
    await lxd?.stop()
    await nginx?.stop()
  })

  const check = (images: ReadonlyArray<ListedImage>) => {
    expect(images.map((i) => i.fingerprint).sort()).toEqual([unified, split].sort())
    const tiny = images.find((i) => i.fingerprint === unified)!
    expect(tiny.type).toBe("container")
    expect(tiny.properties).toMatchObject({ os: "TinyOS", release: "1.0", "requirements.secureboot": "false" })
    expect((tiny.aliases ?? []).map((a) => a.name).sort()).toEqual(expect.arrayContaining(["tiny/1.0/default", "tiny/1.0", "tiny/one", "tiny-latest"]))
  }

  it("lxc image list shows the unified image with its own sha256, the aliases and requirements of image.yaml", () => check(client(work, "lxc").listImages("pub")))
  it("incus image list shows the same", () => check(client(work, "incus").listImages("pub")))
  it("the LXD daemon downloads the unified image by an image.yaml alias and accepts its fingerprint", () => {
    const lxc = client(work, "lxc")
    lxc.run(["image", "copy", "pub:tiny-latest", "local:"])
    const local = JSON.parse(lxc.run(["image", "list", "local:", "--format", "json"])) as ReadonlyArray<ListedImage>
    expect(local.map((i) => i.fingerprint)).toEqual([unified])
    lxc.run(["image", "delete", `local:${unified}`])
  }, 120_000)
})
