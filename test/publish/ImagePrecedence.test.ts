/**
 * Who keeps an image two version folders list: the pure rule, and the same answer from the Publisher (as
 * versions arrive in any order) and from `buildCatalog` (all at once).
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { buildCatalog, catalogVersionDirs, type HashedVersion } from "../../src/indexer/Catalog.js"
import { imagePrecedence, keepsImage, sameImageRefusal } from "../../src/publish/ImagePrecedence.js"
import { Publisher } from "../../src/publish/Publisher.js"
import { versionDir, type VersionRef } from "../../src/tree/Layout.js"
import type { FoundPlan } from "../../src/tree/Scanner.js"

const none = () => false

describe("ImagePrecedence", () => {
  it("keeps the image with the folder in the committed catalog, else with the first folder", () => {
    expect(keepsImage("a/x", "b/x", none)).toBe(true)
    expect(keepsImage("b/x", "a/x", none)).toBe(false)
    const committed = (k: string) => k === "b/x"
    expect(keepsImage("b/x", "a/x", committed)).toBe(true)
    expect(keepsImage("a/x", "b/x", committed)).toBe(false)
    // both committed (another writer's catalog listed both): the first folder
    expect(keepsImage("a/x", "b/x", () => true)).toBe(true)
  })

  it("orders folders by it, and names the keeper in the refusal", () => {
    expect(["c", "b", "a"].sort(imagePrecedence((k) => k === "c"))).toEqual(["c", "a", "b"])
    expect(sameImageRefusal("b/x", "a/x", "0123456789abcdef")).toEqual({ _tag: "Refusal", path: "b/x", reason: "the same image as a/x (fingerprint 0123456789ab)" })
  })

  const ref = (os: string, version = "20240101_10:00"): VersionRef => ({ os, release: "r", arch: "amd64", variant: "default", version })
  let ino = 1
  const plan = (r: VersionRef): FoundPlan => {
    const file = (n: string) => ({ name: n, path: `/i/${versionDir(r)}/${n}`, size: 10, dev: 1, ino: ino++, mtimeMs: 0, ctimeMs: 0 })
    return { _tag: "VersionPlan", ref: r, metadata: [{ ...file("lxd.tar.xz"), name: "lxd.tar.xz" }], rootfs: [{ ...file("rootfs.squashfs"), ftype: "squashfs" }] }
  }
  const sha = (n: number) => n.toString(16).padStart(64, "0")
  /** A version listing one image per fingerprint given (one rootfs combined with each of two metadata files). */
  const version = (p: FoundPlan, fingerprints: ReadonlyArray<number>): HashedVersion => ({
    ref: p.ref,
    metadata: [{ name: "lxd.tar.xz", size: 10, sha256: sha(1), metadata: { architecture: "x86_64", creationDate: 1, properties: {} } }],
    rootfs: fingerprints.map((f, i) => ({ name: i === 0 ? "rootfs.squashfs" : "root.tar.xz", ftype: i === 0 ? "squashfs" : "root.tar.xz", size: 10, sha256: sha(100 + f), combined: { "lxd.tar.xz": sha(f) } }))
  })

  it("gives the Publisher's catalog, whatever the order versions arrive in, and buildCatalog's the same", () => {
    // a and c share image 7; b and c share image 8; d shares image 9 with the committed e
    const plans = ["a", "b", "c", "d", "e"].map((os) => plan(ref(os)))
    const images: Record<string, ReadonlyArray<number>> = { a: [7], b: [8], c: [7, 8], d: [9], e: [9] }
    const versions = plans.map((p) => version(p, images[p.ref.os]!))
    const committed = new Set([versionDir(plans[4]!.ref)])
    const options = { compat: "lxd" as const, imagesPath: "images" }
    const built = catalogVersionDirs(buildCatalog(versions, { ...options, incumbents: committed }).images, "images")
    expect([...built].sort()).toEqual(["a", "b", "e"].map((os) => versionDir(ref(os))))
    for (const order of [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 0, 3, 1, 4]]) {
      const p = new Publisher({ ...options, settleMs: 0 }, undefined, committed)
      for (const i of order) {
        const key = versionDir(plans[i]!.ref)
        p.seen(key, { _tag: "Plan", plan: plans[i]! }, 0)
        p.hashed(key, plans[i]!, Either.right(versions[i]!), false, 0)
      }
      expect([...p.catalogKeys()].sort()).toEqual([...built].sort())
    }
  })
})
