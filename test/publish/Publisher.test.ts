/**
 * The publishing rules with plain values and the TestClock: no files, no processes. Each test feeds what the
 * shell would see and checks the commands and the generations.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Either, TestClock } from "effect"
import type { HashedVersion } from "../../src/indexer/Catalog.js"
import { type Command, filesOf, Publisher, sameFilesAs, writeBackoffMs } from "../../src/publish/Publisher.js"
import { refusal, versionDir, type VersionRef } from "../../src/tree/Layout.js"
import type { FoundPlan } from "../../src/tree/Scanner.js"

const ref = (version: string, os = "debian"): VersionRef => ({ os, release: "bookworm", arch: "amd64", variant: "default", version })
let ino = 1
const plan = (r: VersionRef, mtimeMs = 0, name = "rootfs.squashfs"): FoundPlan => {
  const file = (n: string) => ({ name: n, path: `/i/${versionDir(r)}/${n}`, size: 10, dev: 1, ino: ino++, mtimeMs, ctimeMs: mtimeMs })
  return { _tag: "VersionPlan", ref: r, metadata: [{ ...file("lxd.tar.xz"), name: "lxd.tar.xz" }], rootfs: [{ ...file(name), ftype: "squashfs" }] }
}
const sha = (seed: string) => seed.padEnd(64, "0").replace(/[^0-9a-f]/g, "a").slice(0, 64)
const hashed = (p: FoundPlan, seed: string): HashedVersion => ({
  ref: p.ref,
  metadata: [{ name: "lxd.tar.xz", size: 10, sha256: sha(`1${seed}`), metadata: { architecture: "x86_64", creationDate: 1, properties: {} } }],
  rootfs: p.rootfs.map((f) => ({ name: f.name, ftype: f.ftype, size: 10, sha256: sha(`2${seed}`), combined: { "lxd.tar.xz": sha(`3${seed}`) } }))
})
const options = { compat: "lxd" as const, imagesPath: "images", settleMs: 2000 }
const tags = (cs: ReadonlyArray<Command>) => cs.map((c) => c._tag)
const commitOf = (cs: ReadonlyArray<Command>) => {
  const c = cs.find((c) => c._tag === "Commit")
  if (c?._tag !== "Commit") throw new Error(`no Commit in ${tags(cs).join(",")}`)
  return c.draft
}
/** A version seen, hashed and committed at `at`, as the shell would carry it through. */
const publishNow = (p: Publisher, v: FoundPlan, seed: string, at: number) => {
  const key = versionDir(v.ref)
  p.seen(key, { _tag: "Plan", plan: v }, at)
  p.hashed(key, v, Either.right(hashed(v, seed)), false, at)
  return p.committed(commitOf(p.tick(at)), at)
}

describe("Publisher", () => {
  it.effect("publishes a version once its files have been quiet for the settle window, as one generation", () =>
    Effect.gen(function* () {
      const p = new Publisher(options)
      const key = "debian/bookworm/amd64/default/20240101_10:00"
      const v = plan(ref("20240101_10:00"), 0)
      yield* TestClock.adjust("10 seconds")
      const t0 = yield* Clock.currentTimeMillis
      p.touched(key, t0)
      yield* TestClock.adjust("1 second")
      expect(p.tick(yield* Clock.currentTimeMillis)).toEqual([])
      yield* TestClock.adjust("1 second")
      expect(p.tick(yield* Clock.currentTimeMillis)).toEqual([{ _tag: "Scan", keys: [key] }])
      expect(tags(p.seen(key, { _tag: "Plan", plan: v }, yield* Clock.currentTimeMillis))).toEqual(["Hash"])
      expect(tags(p.hashed(key, v, Either.right(hashed(v, "a")), false, yield* Clock.currentTimeMillis))).toEqual(["Remember"])
      const draft = commitOf(p.tick(yield* Clock.currentTimeMillis))
      expect(draft).toEqual({ number: 1, products: ["debian:bookworm:amd64:default"], added: [key], withdrawn: [] })
      const g = p.committed(draft, yield* Clock.currentTimeMillis)
      expect(g?.number).toBe(1)
      expect(g?.added.map((a) => [a.key, a.since])).toEqual([[key, t0]])
      expect(p.tick(yield* Clock.currentTimeMillis)).toEqual([])
      expect(p.product("debian:bookworm:amd64:default")?.versions["20240101_10:00"]?.items["rootfs.squashfs"]?.sha256).toBe(sha("2a"))
    }))

  it("waits while a file was modified within the settle window, and hashes once it is quiet", () => {
    const p = new Publisher(options)
    const v = plan(ref("20240101_10:00"), 9_000)
    const key = versionDir(v.ref)
    expect(p.seen(key, { _tag: "Plan", plan: v }, 10_000)).toEqual([])
    expect(p.nextDue()).toBe(11_000)
    expect(p.tick(10_999)).toEqual([])
    expect(p.tick(11_000)).toEqual([{ _tag: "Scan", keys: [key] }])
    expect(tags(p.seen(key, { _tag: "Plan", plan: v }, 11_000))).toEqual(["Hash"])
  })

  it("hashes a version that moved while it was hashed again after it settles, and refuses it after three tries", () => {
    const p = new Publisher(options)
    const v = plan(ref("20240101_10:00"))
    const key = versionDir(v.ref)
    p.seen(key, { _tag: "Plan", plan: v }, 10_000)
    expect(tags(p.hashed(key, v, Either.right(hashed(v, "a")), true, 10_100))).toEqual(["Log"])
    expect(p.tick(12_100)).toEqual([{ _tag: "Scan", keys: [key] }])
    p.seen(key, { _tag: "Plan", plan: v }, 12_100)
    p.hashed(key, v, Either.right(hashed(v, "a")), true, 12_200)
    p.seen(key, { _tag: "Plan", plan: v }, 14_200)
    const third = p.hashed(key, v, Either.right(hashed(v, "a")), true, 14_300)
    expect(tags(third)).toEqual(["Remember", "Tell"])
    expect(third.find((c) => c._tag === "Tell")).toMatchObject({ refusal: { reason: expect.stringContaining("kept changing") } })
    expect(p.catalogKeys()).toEqual([])
  })

  it("remembers a refusal by the files' identities: the same files are never read again, changed files are", () => {
    const p = new Publisher(options)
    const v = plan(ref("20240101_10:00"))
    const key = versionDir(v.ref)
    p.seen(key, { _tag: "Plan", plan: v }, 10_000)
    const refused = p.hashed(key, v, Either.left(refusal(`${key}/lxd.tar.xz`, "not a tarball")), false, 10_100)
    expect(tags(refused)).toEqual(["Remember", "Tell"])
    // every later reconcile sees the same files: nothing to hash, nothing to say
    expect(p.treeSeen([v], [], 20_000)).toEqual([])
    expect(p.treeSeen([v], [], 30_000)).toEqual([])
    // a new metadata file (another inode) is looked at again
    const fixed = { ...v, metadata: [{ ...v.metadata[0]!, ino: 999 }] }
    expect(tags(p.treeSeen([fixed], [], 40_000))).toEqual(["Hash"])
  })

  it("refuses, alone, a version that would not be valid in images.json (a file name clients would mangle)", () => {
    const p = new Publisher(options)
    const good = plan(ref("20240101_10:00"))
    const bad = plan(ref("20240102_10:00"), 0, "my image (copy).squashfs")
    const cs = p.treeSeen([good, bad], [], 10_000)
    expect(tags(cs)).toEqual(["Hash", "Hash"])
    p.hashed(versionDir(good.ref), good, Either.right(hashed(good, "a")), false, 10_100)
    const out = p.hashed(versionDir(bad.ref), bad, Either.right(hashed(bad, "b")), false, 10_100)
    expect(out.find((c) => c._tag === "Tell")).toMatchObject({ refusal: { path: versionDir(bad.ref), reason: expect.stringContaining("would not be valid in images.json") } })
    expect(commitOf(p.tick(10_200)).added).toEqual([versionDir(good.ref)])
  })

  it("lists one image once: the version already committed keeps it, and the other takes it when that one leaves", () => {
    const p = new Publisher(options)
    const a = plan(ref("20240101_10:00"))
    const b = plan(ref("20240101_10:00", "copy"))
    const [ka, kb] = [versionDir(a.ref), versionDir(b.ref)]
    publishNow(p, a, "same", 10_000)
    // "copy" sorts before "debian", but the committed one stays
    p.seen(kb, { _tag: "Plan", plan: b }, 20_000)
    const out = p.hashed(kb, b, Either.right(hashed(b, "same")), false, 20_000)
    expect(out.find((c) => c._tag === "Tell")).toMatchObject({ refusal: { path: kb, reason: expect.stringContaining(`the same image as ${ka}`) } })
    expect(p.catalogKeys()).toEqual([ka])
    // the first leaves: the waiting one is listed without being read again
    expect(tags(p.seen(ka, { _tag: "Absent" }, 30_000))).toEqual(["Remember"])
    expect(p.catalogKeys()).toEqual([kb])
    const g = p.committed(commitOf(p.tick(30_000)), 30_000)
    expect(g).toMatchObject({ number: 2, added: [{ key: kb }], withdrawn: [{ key: ka, at: 30_000 }] })
  })

  it("keeps the committed catalog when a write fails, and tries again with backoff", () => {
    const p = new Publisher(options)
    const v = plan(ref("20240101_10:00"))
    const key = versionDir(v.ref)
    p.seen(key, { _tag: "Plan", plan: v }, 10_000)
    p.hashed(key, v, Either.right(hashed(v, "a")), false, 10_000)
    const draft = commitOf(p.tick(10_000))
    expect(p.commitFailed("ENOSPC", 10_000)).toMatchObject([{ _tag: "Log", level: "Error" }])
    expect(p.status().writeTrouble).toMatchObject({ failures: 1, reason: "ENOSPC", retryAt: 10_000 + writeBackoffMs(1) })
    expect(p.tick(10_500)).toEqual([])
    expect(commitOf(p.tick(11_000))).toEqual(draft)
    expect(p.commitFailed("ENOSPC", 11_000)).toMatchObject([{ _tag: "Log", level: "Debug" }])
    expect(p.tick(12_999)).toEqual([])
    expect(p.committed(commitOf(p.tick(13_000)), 13_000)?.number).toBe(1)
    expect(p.status()).toMatchObject({ generation: 1, writeTrouble: undefined })
  })

  it("restarts from what it remembers: an unchanged tree hashes nothing and commits no generation", () => {
    const first = new Publisher(options)
    const v = plan(ref("20240101_10:00"))
    const key = versionDir(v.ref)
    publishNow(first, v, "a", 10_000)
    const again = new Publisher(options, { memory: first.memoryEntries(), catalog: first.committedKeys(), generation: 1 })
    expect(again.treeSeen([v], [], 20_000)).toEqual([])
    expect(again.tick(20_000)).toEqual([])
    expect(again.status()).toMatchObject({ generation: 1, versions: 1 })
    // and a version gone meanwhile is withdrawn
    expect(tags(again.treeSeen([], [], 30_000))).toEqual(["Remember"])
    expect(commitOf(again.tick(30_000))).toMatchObject({ number: 2, withdrawn: [key] })
  })

  it("withdraws a published version whose folder becomes refused by the tree's rules, and says so once", () => {
    const p = new Publisher(options)
    const v = plan(ref("20240101_10:00"))
    const key = versionDir(v.ref)
    publishNow(p, v, "a", 0)
    const r = refusal(key, "a symlink to a folder")
    expect(tags(p.seen(key, { _tag: "Refused", refusal: r }, 1))).toEqual(["Remember", "Tell"])
    expect(tags(p.seen(key, { _tag: "Refused", refusal: r }, 2))).toEqual([])
    expect(commitOf(p.tick(3)).withdrawn).toEqual([key])
  })
  it("a reconcile that finds a version still arriving (events within the settle window) refuses nothing yet: it is looked at once quiet", () => {
    const p = new Publisher(options)
    const v = plan(ref("20240101_10:00"))
    const key = versionDir(v.ref)
    const r = refusal(key, "no rootfs file")
    // the folder and its metadata arrived; a full reconcile runs 80 ms later, before the rootfs is written
    p.touched(key, 1000)
    expect(p.treeSeen([], [r], 1080)).toEqual([])
    expect(p.status().refused).toEqual([])
    // quiet for the settle window: looked at again, and whole by then
    expect(p.tick(2999)).toEqual([])
    expect(p.tick(3000)).toEqual([{ _tag: "Scan", keys: [key] }])
    expect(tags(p.seen(key, { _tag: "Plan", plan: v }, 3000))).toEqual(["Hash"])
    // a version still refused once quiet is refused, and said once
    const w = plan(ref("20240102_10:00"))
    const other = versionDir(w.ref)
    p.touched(other, 5000)
    expect(p.seen(other, { _tag: "Refused", refusal: refusal(other, "no rootfs file") }, 5500)).toEqual([])
    expect(p.tick(7000)).toEqual([{ _tag: "Scan", keys: [other] }])
    expect(tags(p.seen(other, { _tag: "Refused", refusal: refusal(other, "no rootfs file") }, 7000))).toEqual(["Tell"])
  })
  it("an event in a version folder touches the versions whose symlinked files lead into it, while they do", () => {
    const p = new Publisher(options)
    const target = plan(ref("20240101_10:00", "ubuntu"))
    const targetKey = versionDir(target.ref)
    const v = plan(ref("20240102_10:00"))
    const key = versionDir(v.ref)
    const linked: FoundPlan = { ...v, rootfs: [{ ...v.rootfs[0]!, linksInto: targetKey }] }
    publishNow(p, target, "b", 0)
    publishNow(p, linked, "c", 0)
    p.touched(targetKey, 10_000)
    expect(p.tick(12_000)).toEqual([{ _tag: "Scan", keys: [targetKey, key] }])
    // seen again with a real file in place of the link: an event there is its own alone
    p.seen(targetKey, { _tag: "Plan", plan: target }, 12_000)
    p.seen(key, { _tag: "Plan", plan: v }, 12_000)
    p.touched(targetKey, 20_000)
    expect(p.tick(22_000)).toEqual([{ _tag: "Scan", keys: [targetKey] }])
  })
  it("republishes an edited image.yaml from memory: no hash, the new names remembered", () => {
    const p = new Publisher({ ...options, settleMs: 0 })
    const v = plan(ref("20240101_10:00"))
    const key = versionDir(v.ref)
    publishNow(p, v, "a", 1000)
    const edited: FoundPlan = { ...v, image: { aliases: ["stable"], requirements: { secureboot: "false" } } }
    const out = p.seen(key, { _tag: "Plan", plan: edited }, 2000)
    expect(tags(out)).toEqual(["Remember"])
    const remembered = out[0]!._tag === "Remember" ? out[0]!.remembered : undefined
    expect(remembered?._tag === "Hashed" && remembered.version.image).toEqual(edited.image)
    const draft = commitOf(p.tick(2000))
    expect(draft.products).toEqual(["debian:bookworm:amd64:default"])
    p.committed(draft, 2000)
    expect(p.product("debian:bookworm:amd64:default")).toMatchObject({ aliases: "debian/bookworm/default,debian/bookworm,stable", lxd_requirements: { secureboot: "false" } })
    // the same file again changes nothing; its removal takes the names away
    expect(p.seen(key, { _tag: "Plan", plan: edited }, 3000)).toEqual([])
    expect(tags(p.seen(key, { _tag: "Plan", plan: v }, 4000))).toEqual(["Remember"])
    p.committed(commitOf(p.tick(4000)), 4000)
    expect(p.product("debian:bookworm:amd64:default")?.aliases).toBe("debian/bookworm/default,debian/bookworm")
  })

  it("a withdrawn version leaves the catalog and stays out while it holds the withdrawn files; new files under its name are new", () => {
    const p = new Publisher(options)
    const old = plan(ref("20240101_10:00"))
    const key = versionDir(old.ref)
    publishNow(p, old, "a", 0)
    const withheld = new Map([[key, { files: filesOf(old), reason: "retention: keep the newest 1 version" }]])
    expect(p.withhold(withheld)).toEqual([])
    const draft = commitOf(p.tick(10))
    expect(draft.withdrawn).toEqual([key])
    expect(p.committed(draft, 10)?.withdrawn).toEqual([{ key, at: 10, reason: "retention: keep the newest 1 version" }])
    // a reconcile (watch) or a fresh publisher (update) sees the same files: not hashed, not listed
    expect(p.treeSeen([old], [], 20)).toEqual([])
    expect(p.tick(20)).toEqual([])
    const fresh = new Publisher({ ...options, settleMs: 0 })
    fresh.withhold(withheld)
    expect(tags(fresh.treeSeen([old], [], 0))).toEqual([])
    expect(fresh.catalogKeys()).toEqual([])
    // uploaded again under the same name: other files, hashed and published
    const again = plan(ref("20240101_10:00"), 0)
    expect(tags(p.seen(key, { _tag: "Plan", plan: again }, 5000))).toEqual(["Hash"])
    // the record ended (deleted): the folder is looked at again
    expect(p.withhold(new Map())).toEqual([{ _tag: "Scan", keys: [key] }])
  })
})


describe("sameFilesAs", () => {
  it("says what comparing with filesOf(plan) says, for plans of every shape and files that differ in any field", () => {
    const file = (name: string, n: number) => ({ name, path: `/i/${name}`, size: 10 + (n % 2), dev: 1, ino: 100 + (n % 3), mtimeMs: n % 5, ctimeMs: n % 7 })
    const shapes: ReadonlyArray<(n: number) => FoundPlan> = [
      (n) => ({ ...plan(ref("20240101_10:00")), metadata: [{ ...file("lxd.tar.xz", n), name: "lxd.tar.xz" }], rootfs: [{ ...file("rootfs.squashfs", n), ftype: "squashfs" }] }),
      (n) => ({ _tag: "VersionPlan", ref: ref("20240101_10:00"), metadata: [{ ...file("incus.tar.xz", n), name: "incus.tar.xz" }, { ...file("lxd.tar.xz", n + 1), name: "lxd.tar.xz" }], rootfs: [{ ...file("disk.qcow2", n), ftype: "disk-kvm.img" }, { ...file("rootfs.squashfs", n + 2), ftype: "squashfs" }], sums: file("SHA256SUMS", n) }),
      (n) => ({ _tag: "VersionPlan", ref: ref("20240101_10:00"), metadata: [], rootfs: [], unified: file("image.tar.gz", n) }),
      (n) => ({ _tag: "VersionPlan", ref: ref("20240101_10:00"), metadata: [], rootfs: [], unified: file("image.tar.gz", n), sums: file("SHA256SUMS", n + 3) })
    ]
    let alike = 0
    for (const a of shapes) for (const b of shapes) for (let n = 0; n < 12; n++) for (let m = 0; m < 12; m++) {
      const files = filesOf(a(n))
      const other = b(m)
      const same = files.length === filesOf(other).length && files.every((f, i) => JSON.stringify(f) === JSON.stringify(filesOf(other)[i]))
      expect(sameFilesAs(files, other)).toBe(same)
      if (same) alike++
    }
    // each plan against itself at least: both answers are tried
    expect(alike).toBeGreaterThanOrEqual(4 * 12)
  })
})
