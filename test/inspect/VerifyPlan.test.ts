import { describe, expect, it } from "@effect/vitest"
import { buildCatalog } from "../../src/indexer/Catalog.js"
import { checksOf, combinedId, type FileResult, indexProblems, jobsOf, judge } from "../../src/inspect/VerifyPlan.js"
import type { Images } from "../../src/simplestreams/Streams.js"
import { combined, files, hashedVersions } from "../support/Vectors.js"

const { debian, alpine } = hashedVersions
const images = buildCatalog([debian, alpine], { compat: "both", imagesPath: "images" }).images
const d = "images/debian/bookworm/amd64/default/20260822_0742"
const a = "images/alpine/3.20/arm64/default/20260822_0742"

/** What reading the §6 vector files gives, all as the catalog says. */
const goodResults = () => ({
  files: new Map<string, FileResult>([
    [`${d}/incus.tar.xz`, { _tag: "Read", sha256: files.m1.sha256, size: files.m1.size }],
    [`${d}/rootfs.squashfs`, { _tag: "Read", sha256: files.s1.sha256, size: files.s1.size }],
    [`${d}/disk.qcow2`, { _tag: "Read", sha256: files.q1.sha256, size: files.q1.size }],
    [`${a}/lxd.tar.xz`, { _tag: "Read", sha256: files.m2.sha256, size: files.m2.size }],
    [`${a}/rootfs.tar.xz`, { _tag: "Read", sha256: files.r2.sha256, size: files.r2.size }]
  ]),
  combined: new Map<string, string>([
    [combinedId(`${d}/incus.tar.xz`, `${d}/rootfs.squashfs`), combined.m1s1],
    [combinedId(`${d}/incus.tar.xz`, `${d}/disk.qcow2`), combined.m1q1],
    [combinedId(`${a}/lxd.tar.xz`, `${a}/rootfs.tar.xz`), combined.m2r2]
  ])
})

const edit = (f: (items: Record<string, Record<string, unknown>>) => void): Images => {
  const copy = structuredClone(images) as Images
  f(copy.products["alpine:3.20:arm64:default"]!.versions["20260822_0742"]!.items as unknown as Record<string, Record<string, unknown>>)
  return copy
}

describe("checksOf", () => {
  const checks = checksOf(images)

  it("checks each file once, with every item that lists it (both clients' metadata items share one file)", () => {
    expect(checks.files.map((f) => f.path).sort()).toEqual([`${a}/lxd.tar.xz`, `${a}/rootfs.tar.xz`, `${d}/disk.qcow2`, `${d}/incus.tar.xz`, `${d}/rootfs.squashfs`])
    expect(checks.files.find((f) => f.path === `${d}/incus.tar.xz`)!.expected.map((e) => e.item)).toEqual(["incus.tar.xz", "lxd.tar.xz"])
    expect(checks.versions).toBe(2)
    expect(checks.problems).toEqual([])
  })

  it("checks every combined key: combined_sha256 and combined_rootxz_sha256 for a root.tar.xz, per metadata item", () => {
    const alpineKeys = checks.combined.filter((c) => c.version.startsWith("alpine")).map((c) => [c.item, c.key, c.expected])
    expect(alpineKeys).toEqual([
      ["incus.tar.xz", "combined_rootxz_sha256", combined.m2r2],
      ["incus.tar.xz", "combined_sha256", combined.m2r2],
      ["lxd.tar.xz", "combined_rootxz_sha256", combined.m2r2],
      ["lxd.tar.xz", "combined_sha256", combined.m2r2]
    ])
  })

  it("reads each rootfs once behind its metadata file, and nothing twice", () => {
    const jobs = jobsOf(checks)
    expect(jobs.map((j) => [j.file, j.heads]).sort()).toEqual([
      [`${a}/rootfs.tar.xz`, [`${a}/lxd.tar.xz`]],
      [`${d}/disk.qcow2`, [`${d}/incus.tar.xz`]],
      [`${d}/rootfs.squashfs`, [`${d}/incus.tar.xz`]]
    ])
  })

  it("names, from the catalog alone, a combined key without its rootfs, a rootfs without a fingerprint, and a path leaving the web root", () => {
    const broken = edit((items) => {
      items["lxd.tar.xz"]!["combined_squashfs_sha256"] = combined.m1s1
      delete items["incus.tar.xz"]!["combined_sha256"]
      delete items["incus.tar.xz"]!["combined_rootxz_sha256"]
      items["rootfs.tar.xz"]!["path"] = "images/../../etc/passwd"
    })
    expect(checksOf(broken).problems.map((p) => p.line)).toEqual([
      "images/../../etc/passwd: leaves the web root (listed by alpine:3.20:arm64:default 20260822_0742 rootfs.tar.xz)",
      `${a}/lxd.tar.xz: alpine:3.20:arm64:default 20260822_0742 incus.tar.xz has no combined_rootxz_sha256 for rootfs.tar.xz: that client cannot use the image`,
      `${a}/lxd.tar.xz: combined_squashfs_sha256 is set on alpine:3.20:arm64:default 20260822_0742 lxd.tar.xz, but the version has no squashfs item`
    ])
  })

  it("looks again at the versions named, and only those", () => {
    const again = checksOf(images, new Set(["alpine:3.20:arm64:default 20260822_0742", "gone:x:amd64:default 20240101"]))
    expect(again.versions).toBe(1)
    expect(again.files.map((f) => f.path).sort()).toEqual([`${a}/lxd.tar.xz`, `${a}/rootfs.tar.xz`])
  })
})

describe("judge", () => {
  const checks = checksOf(images)

  it("finds nothing when every file is what the catalog says", () => {
    expect(judge(checks, goodResults())).toEqual([])
  })

  it("names the file and what is wrong: missing, size, sha256, combined fingerprint, unreadable", () => {
    const r = goodResults()
    r.files.set(`${d}/disk.qcow2`, { _tag: "Missing" })
    r.files.set(`${d}/rootfs.squashfs`, { _tag: "Read", sha256: files.s1.sha256.replace(/^./, "0"), size: files.s1.size })
    r.files.set(`${a}/lxd.tar.xz`, { _tag: "Read", sha256: files.m2.sha256, size: 5 })
    r.files.set(`${a}/rootfs.tar.xz`, { _tag: "Unreadable", reason: "EACCES: permission denied" })
    r.combined.set(combinedId(`${d}/incus.tar.xz`, `${d}/rootfs.squashfs`), "f".repeat(64))
    r.combined.delete(combinedId(`${d}/incus.tar.xz`, `${d}/disk.qcow2`))
    const lines = judge(checks, r).map((p) => p.line)
    expect(lines).toContain(`${d}/disk.qcow2: missing (listed by debian:bookworm:amd64:default 20260822_0742 disk.qcow2)`)
    expect(lines).toContain(`${d}/rootfs.squashfs: sha256 is 0${files.s1.sha256.slice(1)}, the catalog says ${files.s1.sha256} (listed by debian:bookworm:amd64:default 20260822_0742 rootfs.squashfs)`)
    expect(lines).toContain(`${a}/lxd.tar.xz: size is 5 bytes, the catalog says 21 (listed by alpine:3.20:arm64:default 20260822_0742 lxd.tar.xz)`)
    expect(lines.filter((l) => l.startsWith(`${a}/lxd.tar.xz: size`))).toHaveLength(2)
    expect(lines).toContain(`${a}/rootfs.tar.xz: cannot be read: EACCES: permission denied (listed by alpine:3.20:arm64:default 20260822_0742 rootfs.tar.xz)`)
    expect(lines.filter((l) => l.includes("combined fingerprint"))).toEqual([
      `${d}/incus.tar.xz + ${d}/rootfs.squashfs: combined fingerprint is ${"f".repeat(64)}, combined_squashfs_sha256 says ${combined.m1s1} (listed by debian:bookworm:amd64:default 20260822_0742 incus.tar.xz)`,
      `${d}/incus.tar.xz + ${d}/rootfs.squashfs: combined fingerprint is ${"f".repeat(64)}, combined_squashfs_sha256 says ${combined.m1s1} (listed by debian:bookworm:amd64:default 20260822_0742 lxd.tar.xz)`
    ])
    expect(lines).toHaveLength(7)
  })

  it("catches a combined fingerprint edited into the catalog, though every file is right", () => {
    const edited = edit((items) => {
      items["lxd.tar.xz"]!["combined_sha256"] = "a".repeat(64)
    })
    expect(judge(checksOf(edited), goodResults()).map((p) => p.line)).toEqual([
      `${a}/lxd.tar.xz + ${a}/rootfs.tar.xz: combined fingerprint is ${combined.m2r2}, combined_sha256 says ${"a".repeat(64)} (listed by alpine:3.20:arm64:default 20260822_0742 lxd.tar.xz)`
    ])
  })
})

describe("indexProblems", () => {
  it("wants index.json to list exactly the catalog's products", () => {
    expect(indexProblems(["alpine:3.20:arm64:default", "debian:bookworm:amd64:default"], images)).toEqual([])
    expect(indexProblems(["alpine:3.20:arm64:default", "gone:1:amd64:default"], images).map((p) => p.line)).toEqual([
      "index.json: lists gone:1:amd64:default, which images.json lacks",
      "index.json: does not list debian:bookworm:amd64:default: clients never see it"
    ])
    expect(indexProblems(undefined, images).map((p) => p.line)).toEqual(["index.json: missing or not an index: clients find no catalog"])
  })
})
