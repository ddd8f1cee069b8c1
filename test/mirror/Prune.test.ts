/**
 * Files that `prune` (another process) deletes once their grace period is over leave the mirrors of a running
 * `watch` too, though no generation follows the deletion: sshd on 127.0.0.1, rsync over ssh, the real program.
 */
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { runBinAsync } from "../support/Bin.js"
import { haveTools } from "../support/Tools.js"
import { addContainer, type WebRoot } from "../support/Tree.js"
import { sleep, startWatch, waitFor, type WatchProcess } from "../support/WatchProcess.js"
import { expectSameCatalog, type PrimaryWithMirror, primaryWithMirror } from "./support/Mirror.js"
import { sshdPath } from "./support/Sshd.js"

const ready = haveTools(sshdPath, "ssh", "ssh-keygen", "rsync", "mksquashfs")
const version = "debian/bookworm/amd64/default/20240101_10:00"

describe.skipIf(!ready)("prune deletes while watch pushes to a mirror", () => {
  let work: string
  let primary: WebRoot
  let mirrorRoot: string
  let config: string
  let setup: PrimaryWithMirror | undefined
  let watch: WatchProcess | undefined

  beforeAll(async () => {
    // watch's own grace is long: only the prune command, with a short one, deletes in this test
    setup = await primaryWithMirror("lis-mirror-prune-", 6)
    ;({ work, primary, mirrorRoot, config } = setup)
    addContainer(primary, version, "1")
    addContainer(primary, "debian/bookworm/amd64/default/20240102_10:00", "2")
  }, 60_000)

  afterAll(async () => {
    await watch?.stop()
    await setup?.remove()
  })

  it("the files prune deletes after the grace period leave the mirror without waiting for a new generation", async () => {
    watch = startWatch(primary, { config })
    const onMirror = join(mirrorRoot, "images", version, "rootfs.squashfs")
    await waitFor("the first push", () => existsSync(onMirror) && existsSync(join(mirrorRoot, "streams", "v1", "index.json")), 120_000)
    const cli = (...args: ReadonlyArray<string>) => runBinAsync(["--log-file", join(work, "cli.log"), "--config", config, ...args])
    const removed = await cli("remove", "--grace", "0.001", `debian:bookworm:amd64:default@20240101_10:00`)
    expect(removed.code, removed.stderr).toBe(0)
    // the withdrawal reaches the mirror's catalog; the files stay for the grace period (3.6 s)
    await waitFor("the withdrawal on the mirror", () => existsSync(onMirror) && !readCatalogText(mirrorRoot).includes("20240101_10:00"), 120_000)
    await sleep(4_000)
    const pruned = await cli("prune", "--grace", "0.001")
    expect(pruned.code, pruned.stderr).toBe(0)
    expect(existsSync(primary.version(version))).toBe(false)
    await waitFor("the deletion on the mirror", () => !existsSync(join(mirrorRoot, "images", version)), 60_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${watch!.log().slice(-3000)}`)
    })
    expectSameCatalog(primary, mirrorRoot)
  }, 300_000)
})

const readCatalogText = (root: string): string => {
  try {
    return readFileSync(join(root, "streams", "v1", "images.json"), "utf8")
  } catch {
    return ""
  }
}
