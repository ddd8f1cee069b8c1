import { describe, expect, it } from "@effect/vitest"
import { dueKeys, isQuiet, touch, versionKeyOf } from "../../src/watch/Settle.js"
import { entryFor, lookup } from "../../src/indexer/HashCache.js"
import type { FoundPlan } from "../../src/tree/Scanner.js"

const file = (name: string, mtimeMs: number) => ({ name, path: `/x/${name}`, size: 10, dev: 1, ino: name.length, mtimeMs })
const plan = (mtime: number): FoundPlan => ({
  _tag: "VersionPlan",
  ref: { os: "debian", release: "bookworm", arch: "amd64", variant: "default", version: "20240101_10:00" },
  metadata: [{ ...file("lxd.tar.xz", mtime), name: "lxd.tar.xz" }],
  rootfs: [{ ...file("rootfs.squashfs", mtime), ftype: "squashfs" }]
})

describe("settling", () => {
  it("groups events by version folder; a path above one concerns the tree", () => {
    expect(versionKeyOf("debian/bookworm/amd64/default/20240101_10:00/.rootfs.squashfs.Ab12Cd")).toBe("debian/bookworm/amd64/default/20240101_10:00")
    expect(versionKeyOf("debian/bookworm/amd64/default/20240101_10:00")).toBe("debian/bookworm/amd64/default/20240101_10:00")
    expect(versionKeyOf("debian/bookworm")).toBe("tree")
  })
  it("is due once no event came for the settle window, keeping the first event's time", () => {
    let pending = new Map([["a", touch(new Map(), "a", 1000)]])
    pending = new Map([["a", touch(pending, "a", 2500)]])
    expect(pending.get("a")).toEqual({ first: 1000, last: 2500 })
    expect(dueKeys(pending, 4000, 2000)).toEqual([])
    expect(dueKeys(pending, 4500, 2000)).toEqual(["a"])
  })
  it("is quiet only when no file was modified within the window", () => {
    expect(isQuiet(plan(1000), 3000, 2000)).toBe(true)
    expect(isQuiet(plan(1500), 3000, 2000)).toBe(false)
    // copied with its times from a host whose clock is ahead: not a writer here
    expect(isQuiet(plan(60_000), 3000, 2000)).toBe(true)
  })
})

describe("hash cache", () => {
  it("answers only while every file is the same, unchanged", () => {
    const version = { ref: plan(1).ref, metadata: [], rootfs: [] }
    const entries = new Map([["k", entryFor(plan(1000), "both", version)]])
    expect(lookup(entries, "k", plan(1000), "both")).toBe(version)
    expect(lookup(entries, "k", plan(1001), "both")).toBeUndefined()
    expect(lookup(entries, "k", plan(1000), "lxd")).toBeUndefined()
    const grown = plan(1000)
    expect(lookup(entries, "k", { ...grown, rootfs: [{ ...grown.rootfs[0]!, size: 11 }] }, "both")).toBeUndefined()
    expect(lookup(entries, "other", plan(1000), "both")).toBeUndefined()
  })
})
