/**
 * End to end, the round trip a user makes, with the real daemons started here: the LXD 5.0.2 daemon launches a
 * busybox image, `lxc publish`es the container (a unified image) and `lxc image export`s it; an image imported
 * split is exported split; `add` puts each on the server (nginx over the web root); `lxc image list` and
 * `incus image list` show the fingerprints the exporting daemon had, and the LXD and Incus 6.0.4 daemons launch
 * containers from the server by the aliases `add` gave, which reach RUNNING. An image `incus publish` made
 * takes the same way back. Everything stays on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import { runBinAsync } from "../support/Bin.js"
import { sha256Of as sha, tempDir } from "../support/Images.js"
import { haveRoot, haveTools } from "../support/Tools.js"
import { makeWebRoot, type WebRoot } from "../support/Tree.js"
import { busybox, type BusyboxImage, writeBusyboxImage } from "./support/Busybox.js"
import { addDirPool, client, type ClientName, incusd, type ListedImage, type RunningLxd, startIncus, startLxd, waitRunning } from "./support/Clients.js"
import { type RunningNginx, startStaticNginx } from "./support/Nginx.js"
import { makeTestCert } from "./support/Tls.js"

const ready = haveTools("nginx", "openssl", "lxc", "lxd", "incus", incusd, busybox, "mksquashfs", "tar", "xz", "gzip") && haveRoot()


describe.skipIf(!ready)("the round trip: publish, export, add, launch", () => {
  let work: string
  let web: WebRoot
  let image: BusyboxImage
  let lxd: RunningLxd
  let incus: RunningLxd
  let nginx: RunningNginx
  const lxc = () => client(work, "lxc")
  const inc = () => client(work, "incus")
  /** The fingerprints each step made, as the exporting daemon had them. */
  const made = { unified: "", split: "", incus: "" }

  const add = (...args: Array<string>) =>
    runBinAsync(["--log-file", join(work, "add.log"), "--config", join(work, "none.toml"), "add", ...args, "--img-dir", web.images, "--streams-dir", web.streams, "--state-dir", join(work, "state")])

  /**
   * Both daemons (and the incus client) keep what they read of a simplestreams remote for up to an hour, in
   * <dir>/cache/<sha256 of its URL>/ (~/.cache/incus): a catalog read before `add` would not name the image.
   */
  const forgetCatalogs = () => {
    for (const cache of [join(work, "lxd", "cache"), join(work, "incus", "cache"), join(work, "home", ".cache", "incus")]) {
      for (const entry of existsSync(cache) ? readdirSync(cache) : []) if (/^[0-9a-f]{64}$/.test(entry)) rmSync(join(cache, entry), { recursive: true, force: true })
    }
  }

  /** Launches an instance from the server by an alias, and waits for it to run; then deletes it and the image it cached. */
  const launchesFromServer = async (name: ClientName, alias: string, fingerprint: string, instance: string) => {
    const c = client(work, name)
    forgetCatalogs()
    c.run(["launch", `rt:${alias}`, instance])
    await waitRunning(work, name, instance)
    // downloaded from the server, not found locally: the daemon now holds it, under the server's fingerprint
    const local = JSON.parse(c.run(["image", "list", "local:", "--format", "json"])) as ReadonlyArray<ListedImage>
    expect(local.map((i) => i.fingerprint)).toContain(fingerprint)
    c.run(["delete", "--force", instance])
    c.run(["image", "delete", `local:${fingerprint}`])
  }

  const listedBoth = (fingerprint: string, alias: string) => {
    forgetCatalogs()
    for (const c of [lxc(), inc()]) {
      const listed = c.listImages("rt").find((i) => i.fingerprint === fingerprint)
      expect(listed, `${fingerprint} in ${c.confDir}`).toBeDefined()
      expect((listed!.aliases ?? []).map((a) => a.name)).toContain(alias)
      expect(listed!.type).toBe("container")
    }
  }

  /** Publishes a stopped instance as a unified image and exports it: the exported file, and the daemon's fingerprint. */
  const publishAndExport = (name: ClientName, instance: string, alias: string) => {
    const c = client(work, name)
    c.run(["stop", "--force", instance])
    c.run(["publish", instance, "--alias", alias])
    const fingerprint = (JSON.parse(c.run(["image", "list", `local:${alias}`, "--format", "json"])) as ReadonlyArray<ListedImage>)[0]!.fingerprint
    const exported = join(work, `export-${alias}`)
    c.run(["image", "export", alias, exported])
    expect(sha(`${exported}.tar.gz`)).toBe(fingerprint)
    return { file: `${exported}.tar.gz`, fingerprint }
  }

  beforeAll(async () => {
    work = tempDir("lis-e2e-roundtrip-")
    chmodSync(work, 0o755) // nginx workers run as www-data
    web = makeWebRoot()
    chmodSync(web.root, 0o755)
    mkdirSync(join(work, "image"))
    image = writeBusyboxImage(join(work, "image"), { creationDate: 1704103200 })
    mkdirSync(join(work, "nginx"))
    const tls = makeTestCert(work)
    nginx = await startStaticNginx(join(work, "nginx"), web.root, tls)
    lxd = await startLxd(work)
    incus = await startIncus(work)
    for (const name of ["lxc", "incus"] as const) {
      addDirPool(work, name)
      client(work, name).addRemote("rt", nginx.url, tls.cert)
    }
  }, 240_000)

  afterAll(async () => {
    for (const c of ["lxc", "incus"] as const) {
      try {
        const instances = JSON.parse(client(work, c).run(["list", "--format", "json"])) as ReadonlyArray<{ name: string }>
        for (const i of instances) client(work, c).run(["delete", "--force", i.name])
      } catch {
        /* the daemon did not start */
      }
    }
    await incus?.stop()
    await lxd?.stop()
    await nginx?.stop()
  }, 120_000)

  it("lxc publish → lxc image export (unified) → add: both clients list the exporting daemon's fingerprint, and the LXD daemon launches it by its alias", async () => {
    lxc().run(["image", "import", image.unified, "--alias", "busybox-source"])
    lxc().run(["launch", "busybox-source", "source"])
    await waitRunning(work, "lxc", "source")
    const exported = publishAndExport("lxc", "source", "published")
    made.unified = exported.fingerprint

    const added = await add(exported.file, "--alias", "rt-unified")
    expect(added.code, added.stderr).toBe(0)
    expect(added.stdout).toBe(`${made.unified}\n`)
    listedBoth(made.unified, "rt-unified")
    // the daemon must download it: it holds no image of it any more
    lxc().run(["delete", "--force", "source"])
    lxc().run(["image", "delete", "published", "busybox-source"])
    await launchesFromServer("lxc", "rt-unified", made.unified, "from-server-unified")
  }, 240_000)

  it("an image imported split → lxc image export (meta-<fp>.tar.xz and <fp>.squashfs) → add: listed with its fingerprint, launched by the LXD daemon", async () => {
    lxc().run(["image", "import", image.meta, image.rootfs, "--alias", "busybox-split"])
    lxc().run(["launch", "busybox-split", "split-source"])
    await waitRunning(work, "lxc", "split-source")
    made.split = (JSON.parse(lxc().run(["image", "list", "local:busybox-split", "--format", "json"])) as ReadonlyArray<ListedImage>)[0]!.fingerprint
    const exported = join(work, "export-split")
    mkdirSync(exported)
    lxc().run(["image", "export", "busybox-split", `${exported}/`])
    expect(readdirSync(exported).sort()).toEqual([`${made.split}.squashfs`, `meta-${made.split}.tar.xz`])
    expect(sha(join(exported, `meta-${made.split}.tar.xz`), join(exported, `${made.split}.squashfs`))).toBe(made.split)

    // the same creation date as the unified one: another variant
    const added = await add(join(exported, `meta-${made.split}.tar.xz`), join(exported, `${made.split}.squashfs`), "--variant", "split", "--alias", "rt-split")
    expect(added.code, added.stderr).toBe(0)
    expect(added.stdout).toBe(`${made.split}\n`)
    listedBoth(made.split, "rt-split")
    lxc().run(["delete", "--force", "split-source"])
    lxc().run(["image", "delete", "busybox-split"])
    await launchesFromServer("lxc", "rt-split", made.split, "from-server-split")
  }, 240_000)

  it("the Incus daemon launches both from the server by their aliases", async () => {
    expect(made.unified && made.split).toBeTruthy()
    await launchesFromServer("incus", "rt-unified", made.unified, "incus-unified")
    await launchesFromServer("incus", "rt-split", made.split, "incus-split")
  }, 240_000)

  it("incus publish → incus image export → add: the LXD daemon launches what Incus made", async () => {
    inc().run(["launch", "rt:rt-split", "incus-source"])
    await waitRunning(work, "incus", "incus-source")
    const exported = publishAndExport("incus", "incus-source", "incus-published")
    made.incus = exported.fingerprint
    const added = await add(exported.file, "--variant", "incus", "--alias", "rt-incus")
    expect(added.code, added.stderr).toBe(0)
    expect(added.stdout).toBe(`${made.incus}\n`)
    listedBoth(made.incus, "rt-incus")
    await launchesFromServer("lxc", "rt-incus", made.incus, "lxd-from-incus")
  }, 240_000)
})
