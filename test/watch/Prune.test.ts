/**
 * The lifecycle beside the running service, with real processes and real images: `prune` while `watch` runs,
 * `watch`'s own retention, deletions after the grace period, and a reader that never sees a catalog naming a
 * file that is gone.
 */
import { describe, expect, it } from "@effect/vitest"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { runBinAsync } from "../support/Bin.js"
import { haveTools } from "../support/Tools.js"
import { addContainer, makeWebRoot, type WebRoot } from "../support/Tree.js"
import { filesExist, publishedVersions, sleep, startReader, startWatch, waitFor } from "../support/WatchProcess.js"

const deb = (v: string) => `debian/bookworm/amd64/default/${v}`
const versions = ["20240101_10:00", "20240102_10:00", "20240103_10:00"]

const prune = (w: WebRoot, config: string, ...args: Array<string>) =>
  runBinAsync(["--log-file", join(w.root, "prune.log"), "--config", config, "prune", "--img-dir", w.images, "--streams-dir", w.streams, "--state-dir", join(w.root, "state"), ...args])

describe.skipIf(!haveTools("tar", "xz", "mksquashfs"))("prune beside watch", () => {
  it("prune withdraws at once while watch runs; watch neither re-publishes it on a reconcile nor lets a reader see a missing file, and deletes it after the grace", async () => {
    const w = makeWebRoot()
    versions.forEach((v, i) => addContainer(w, deb(v), `p${i}`))
    // a tiny grace for the test: 0.002 h = 7.2 s
    const config = join(w.root, "config.toml")
    writeFileSync(config, "[prune]\ngrace_hours = 0.002\n")
    const watch = startWatch(w, { config, reconcileInterval: "1" })
    const checker = startReader(w, filesExist(w.root))
    let seen: Awaited<ReturnType<typeof checker.stop>> = { reads: 0, problems: [] }
    try {
      await waitFor("the first catalog", () => publishedVersions(w).length === 3, 60_000)
      const out = await prune(w, config, "--keep", "1")
      expect(out.code).toBe(0)
      expect(publishedVersions(w)).toEqual([deb(versions[2]!)])
      await waitFor("watch's generation for the withdrawal", () => /removed debian\/bookworm\/amd64\/default\/20240101_10:00 from the catalog: retention: keep the newest 1 version/.test(watch.log()), 30_000)
      // reconciles run every second meanwhile: the withdrawn versions stay out, their files stay on disk
      await sleep(3000)
      expect(publishedVersions(w)).toEqual([deb(versions[2]!)])
      expect(existsSync(join(w.version(deb(versions[0]!)), "rootfs.squashfs"))).toBe(true)
      await waitFor("the deletion after the grace period", () => !existsSync(w.version(deb(versions[0]!))) && !existsSync(w.version(deb(versions[1]!))), 30_000)
      expect(watch.log()).toMatch(/deleted .*20240101_10:00: withdrawn .*grace period over/)
      // the record of the deletions is appended once all of them are done, just after the folders go
      await waitFor("the deletion's record", () => /"deleted":"debian\/bookworm\/amd64\/default\/20240101_10:00"/.test(readFileSync(join(w.root, "state", "withdrawn.jsonl"), "utf8")), 10_000)
      // uploaded again after the deletion: new, published
      addContainer(w, deb(versions[0]!), "again")
      await waitFor("the new upload under the old name", () => publishedVersions(w).includes(deb(versions[0]!)), 30_000)
    } finally {
      await watch.stop()
      seen = await checker.stop()
    }
    expect(seen.problems).toEqual([])
    expect(seen.reads).toBeGreaterThan(100)
  }, 180_000)

  it("watch applies [prune] keep after each generation and deletes after the grace; a restart does not bring a withdrawn version back", async () => {
    const w = makeWebRoot()
    const config = join(w.root, "config.toml")
    writeFileSync(config, "[prune]\nkeep = 2\ngrace_hours = 0.003\n")
    addContainer(w, deb(versions[0]!), "r0")
    addContainer(w, deb(versions[1]!), "r1")
    let watch = startWatch(w, { config })
    const checker = startReader(w, filesExist(w.root))
    let seen: Awaited<ReturnType<typeof checker.stop>> = { reads: 0, problems: [] }
    try {
      await waitFor("two versions", () => publishedVersions(w).length === 2, 60_000)
      addContainer(w, deb(versions[2]!), "r2")
      await waitFor("retention after the third", () => publishedVersions(w).join() === [deb(versions[1]!), deb(versions[2]!)].join(), 30_000)
      expect(existsSync(join(w.version(deb(versions[0]!)), "rootfs.squashfs"))).toBe(true)
      await watch.stop()
      watch = startWatch(w, { config })
      await waitFor("the restarted service's reconcile", () => /reconciled/.test(watch.log()), 60_000)
      expect(publishedVersions(w)).toEqual([deb(versions[1]!), deb(versions[2]!)])
      await waitFor("the deletion after the grace period", () => !existsSync(w.version(deb(versions[0]!))), 30_000)
      expect(publishedVersions(w)).toEqual([deb(versions[1]!), deb(versions[2]!)])
    } finally {
      await watch.stop()
      seen = await checker.stop()
    }
    expect(seen.problems).toEqual([])
  }, 180_000)
})
