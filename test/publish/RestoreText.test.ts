/**
 * A restart's catalog text: cut from images.json only when the journal says that file is the one the last
 * generation wrote, by this build for this compat mode and images path; the products of version folders
 * remembered since are rendered again; anything else renders every product. The rule with plain values, then
 * the journal's record of it, then the files.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { statSync, utimesSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import type { HashedVersion } from "../../src/indexer/Catalog.js"
import { replay } from "../../src/publish/Journal.js"
import { Publisher } from "../../src/publish/Publisher.js"
import { renderedText, renderKeyOf, restoreText, textFromWritten } from "../../src/publish/RestoreText.js"
import { identityOf } from "../../src/tree/Identity.js"
import { versionDir, type VersionRef } from "../../src/tree/Layout.js"
import type { FoundPlan } from "../../src/tree/Scanner.js"
import { tempDir } from "../support/Images.js"

const options = { compat: "lxd" as const, imagesPath: "images", settleMs: 0 }
const ref = (os: string, version: string): VersionRef => ({ os, release: "bookworm", arch: "amd64", variant: "default", version })
const plan = (r: VersionRef): FoundPlan => {
  const file = (name: string) => ({ name, path: `/i/${versionDir(r)}/${name}`, size: 10, dev: 1, ino: 1, mtimeMs: 0, ctimeMs: 0 })
  return { _tag: "VersionPlan", ref: r, metadata: [{ ...file("lxd.tar.xz"), name: "lxd.tar.xz" }], rootfs: [{ ...file("rootfs.squashfs"), ftype: "squashfs" }] }
}
const sha = (seed: string) => seed.padEnd(64, "0").replace(/[^0-9a-f]/g, "a").slice(0, 64)
const hashed = (p: FoundPlan, seed: string): HashedVersion => ({
  ref: p.ref,
  metadata: [{ name: "lxd.tar.xz", size: 10, sha256: sha(`1${seed}`), metadata: { architecture: "x86_64", creationDate: 1, properties: {} } }],
  rootfs: p.rootfs.map((f) => ({ name: f.name, ftype: f.ftype, size: 10, sha256: sha(`2${seed}`), combined: { "lxd.tar.xz": sha(`3${seed}`) } }))
})
/** A publisher holding these versions (os, version, hash seed), all committed. */
const publisherOf = (versions: ReadonlyArray<readonly [string, string, string]>) => {
  const p = new Publisher(options)
  for (const [os, version, seed] of versions) {
    const v = plan(ref(os, version))
    const key = versionDir(v.ref)
    p.seen(key, { _tag: "Plan", plan: v }, 0)
    p.hashed(key, v, Either.right(hashed(v, seed)), false, 0)
  }
  const commit = p.tick(0).find((c) => c._tag === "Commit")
  if (commit?._tag === "Commit") p.committed(commit.draft, 0)
  return p
}
/** The publisher a restart makes from what this one remembers. */
const restarted = (p: Publisher) => new Publisher(options, { memory: p.memoryEntries(), catalog: p.catalogKeys(), generation: p.generationNumber() })
const three = [["alpine", "20240101_10:00", "a"], ["debian", "20240101_10:00", "b"], ["fedora", "20240101_10:00", "c"]] as const

describe("the catalog text at a restart", () => {
  it("is cut from images.json as written, byte for byte what rendering every product gives", () => {
    const before = publisherOf(three)
    const bytes = renderedText(before).images()
    const again = restarted(before)
    const restored = textFromWritten(again, bytes, new Set())
    expect(restored?.rendered).toBe(0)
    expect(restored?.text.images().equals(bytes)).toBe(true)
    expect(renderedText(again).images().equals(bytes)).toBe(true)
  })

  it("renders again the products of the version folders remembered since the file was written", () => {
    const written = renderedText(publisherOf(three)).images()
    // debian's version was hashed again (new bytes) after that write, and the process stopped
    const now = restarted(publisherOf([three[0], ["debian", "20240101_10:00", "d"], three[2]]))
    const truth = renderedText(now).images()
    expect(truth.equals(written)).toBe(false)
    expect(textFromWritten(now, written, new Set())?.text.images().equals(truth)).toBe(false) // what `touched` is for
    const restored = textFromWritten(now, written, new Set(["debian/bookworm/amd64/default/20240101_10:00"]))
    expect(restored?.rendered).toBe(1)
    expect(restored?.text.images().equals(truth)).toBe(true)
  })

  it("is not cut from a file that lists other products", () => {
    const written = renderedText(publisherOf(three.slice(0, 2))).images()
    expect(textFromWritten(restarted(publisherOf(three)), written, new Set())).toBeUndefined()
    expect(textFromWritten(restarted(publisherOf(three)), Buffer.from("{}\n"), new Set())).toBeUndefined()
  })

  it("takes images.json only when it is the file recorded, for the same render key", () => {
    const dir = tempDir()
    const file = join(dir, "images.json")
    const truth = publisherOf(three)
    // a file with the right products and layout, but not the truth (an edit by hand, another build)
    const stale = renderedText(publisherOf([three[0], ["debian", "20240101_10:00", "d"], three[2]])).images()
    writeFileSync(file, stale)
    const key = renderKeyOf("build-1", "lxd", "images")
    const record = (k = key) => ({ written: { file: identityOf("images.json", statSync(file)), key: k!, touched: new Set<string>() } })
    // recorded: taken as it is (the record is what vouches for it)
    const taken = restoreText(restarted(truth), record(), file, key)
    expect(taken.rendered).toBe(0)
    // and says which file it is, so that the first reconcile need not read it again to compare
    expect(taken.file).toEqual(identityOf("images.json", statSync(file)))
    // another build, another compat mode or images path, or no build known: every product rendered
    for (const [k, recorded] of [[renderKeyOf("build-2", "lxd", "images"), key], [renderKeyOf("build-1", "incus", "images"), key], [renderKeyOf("build-1", "lxd", "web/images"), key], [undefined, key]] as const) {
      const r = restoreText(restarted(truth), record(recorded), file, k)
      expect(r.rendered).toBe(3)
      expect(r.file).toBeUndefined()
      expect(r.text.images().equals(renderedText(truth).images())).toBe(true)
    }
    // the file changed since it was recorded (its times moved), or is gone: every product rendered
    const recorded = record()
    utimesSync(file, new Date(1e12), new Date(1e12))
    expect(restoreText(restarted(truth), recorded, file, key).rendered).toBe(3)
    expect(restoreText(restarted(truth), { written: undefined }, file, key).rendered).toBe(3)
    expect(restoreText(restarted(truth), recorded, join(dir, "none.json"), key).rendered).toBe(3)
  })
})

describe("the journal's record of images.json", () => {
  const header = JSON.stringify({ format: "lxd-image-server/publisher", compat: "lxd" })
  const images = { file: { name: "images.json", dev: 1, ino: 2, size: 3, mtimeMs: 4, ctimeMs: 5 }, key: "k" }
  const remember = (key: string) => JSON.stringify({ remember: key, what: { _tag: "Refused", files: [], refusal: { path: key, reason: "r" } } })
  const generation = (n: number, extra: object = {}) => JSON.stringify({ generation: n, at: n, added: [], withdrawn: [], ...extra })
  const replayed = (...lines: Array<string>) => replay(`${[header, ...lines].join("\n")}\n`, "lxd").state.written

  it("is the last generation's, with the version folders remembered or forgotten since", () => {
    expect(replayed(remember("a"), generation(1, { images }))).toEqual({ ...images, touched: new Set() })
    expect(replayed(generation(1, { images }), remember("b"), JSON.stringify({ forget: "c" }))).toEqual({ ...images, touched: new Set(["b", "c"]) })
    // a write without a generation (a start that found the file stale) records it again
    const next = { ...images, file: { ...images.file, ino: 9 } }
    expect(replayed(generation(1, { images }), remember("b"), JSON.stringify({ images: next }))).toEqual({ ...next, touched: new Set() })
  })

  it("is forgotten by a generation that says nothing of it, and by a compaction", () => {
    expect(replayed(generation(1, { images }), generation(2))).toBeUndefined()
    expect(replayed(generation(1, { images }), JSON.stringify({ snapshot: 1, at: 1, catalog: [], withdrawnAt: {} }))).toBeUndefined()
    expect(replayed()).toBeUndefined()
  })
})
