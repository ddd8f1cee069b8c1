/**
 * The page at 10,000 versions (1,000 products of 10, a container and a VM each: 20,000 images): what a render
 * costs cold (every product read out of its piece of images.json) and after one product changed, which is
 * what a publish of `watch` costs. The figures are printed; the bounds are loose (a shared, loaded machine).
 */
import { describe, expect, it } from "@effect/vitest"
import { CatalogText, productOfPiece } from "../../src/indexer/CatalogText.js"
import { PageFragments, type PageSite } from "../../src/page/CatalogPage.js"
import type { Product } from "../../src/simplestreams/Streams.js"

const hex = (n: number, salt: string) => (salt + n.toString(16)).padStart(64, "0").slice(-64)

const productOf = (j: number, versions: number, salt = ""): Product => ({
  aliases: `os${j}/r/default,os${j}/r`,
  arch: "amd64",
  os: `os${j}`,
  release: "r",
  release_title: "r",
  variant: "default",
  versions: Object.fromEntries(
    Array.from({ length: versions }, (_, d) => {
      const base = `images/os${j}/r/amd64/default/202401${String(d + 1).padStart(2, "0")}_10:00`
      const meta = { path: `${base}/lxd.tar.xz`, sha256: hex(j * 100 + d, "a"), size: 420, combined_squashfs_sha256: hex(j * 100 + d, `b${salt}`), "combined_disk-kvm-img_sha256": hex(j * 100 + d, "c") }
      return [`202401${String(d + 1).padStart(2, "0")}_10:00`, {
        items: {
          "incus.tar.xz": { ftype: "incus.tar.xz", ...meta },
          "lxd.tar.xz": { ftype: "lxd.tar.xz", ...meta },
          "rootfs.squashfs": { ftype: "squashfs", path: `${base}/rootfs.squashfs`, sha256: hex(j * 100 + d, "d"), size: 4096 },
          "disk.qcow2": { ftype: "disk-kvm.img", path: `${base}/disk.qcow2`, sha256: hex(j * 100 + d, "e"), size: 8192 }
        }
      }] as const
    })
  )
})

const site: PageSite = { url: "https://images.test", remote: "myimages", clients: ["lxc", "incus"] }

/** What `f` returned, and the CPU time it took in ms (user + system: the wall clock of a loaded machine says little). */
const timed = <A>(f: () => A): [A, number] => {
  const started = process.cpuUsage()
  const a = f()
  const used = process.cpuUsage(started)
  return [a, (used.user + used.system) / 1000]
}

describe("the page at 10,000 versions", () => {
  it("renders cold once, then only the product a publish touched", () => {
    const text = new CatalogText()
    for (let j = 0; j < 1000; j++) text.setProduct(`os${j}:r:amd64:default`, productOf(j, 10), { checked: true })
    const fragments = new PageFragments()
    const [cold, coldMs] = timed(() => fragments.render(site, text.snapshot(), productOfPiece).toString())
    text.setProduct("os500:r:amd64:default", productOf(500, 11, "f"), { checked: true })
    const runs = Array.from({ length: 5 }, () => {
      text.setProduct("os500:r:amd64:default", productOf(500, 11, "f"), { checked: true })
      return timed(() => fragments.render(site, text.snapshot(), productOfPiece))
    })
    const warmMs = runs.map(([, ms]) => ms).sort((a, b) => a - b)[2]!
    const page = runs[0]![0].toString()
    console.log(`page at 10,000 versions (20,000 images): ${(Buffer.byteLength(page) / 2 ** 20).toFixed(2)} MiB; CPU of a cold render ${coldMs.toFixed(0)} ms; of a render after one product changed ${warmMs.toFixed(1)} ms (median of 5)`)
    expect((cold.match(/"v":"/g) ?? []).length).toBe(20_000)
    expect((page.match(/"v":"/g) ?? []).length).toBe(20_002)
    expect(coldMs).toBeLessThan(10_000)
    expect(warmMs).toBeLessThan(2_000)
  })
})
