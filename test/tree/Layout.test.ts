import { describe, expect, it } from "@effect/vitest"
import { isWithin, planVersion, productArch, productKey, startsWithDate, type VersionRef, versionFolderKind } from "../../src/tree/Layout.js"

const ref: VersionRef = { os: "debian", release: "bookworm", arch: "amd64", variant: "default", version: "20240101_10:00" }

describe("version folders", () => {
  it("start with a real YYYYMMDD date", () => {
    for (const name of ["20240101_10:00", "20240229", "20241127_1000", "20240101-anything"]) expect(versionFolderKind(name)).toBe("version")
    for (const name of ["20240230_10:00", "20241301", "2024-01-01", "v1", "1.0.0", "2024010", "latest"]) expect(versionFolderKind(name)).toBe("other")
    expect(versionFolderKind(".20241127_10:00")).toBe("staging")
    expect(startsWithDate("19691231")).toBe(false)
  })
  it("take for a date what the calendar does, day by day from 1969 to 2101, and nothing else of eight digits", () => {
    // the rule as first written, with the calendar of Date
    const byCalendar = (name: string) => {
      const m = /^(\d{4})(\d{2})(\d{2})/.exec(name)
      if (m === null) return false
      const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])]
      const date = new Date(Date.UTC(y, mo - 1, d))
      return y >= 1970 && date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d
    }
    const two = (n: number) => String(n).padStart(2, "0")
    for (let y = 1969; y <= 2101; y++)
      for (let mo = 0; mo <= 13; mo++)
        for (let d = 0; d <= 32; d++) {
          const name = `${y}${two(mo)}${two(d)}_10:00`
          expect(startsWithDate(name), name).toBe(byCalendar(name))
        }
    for (const name of ["", "2024", "2024010", "2024010a", "+2024010", "２０２４０１０１", "0000000099", "99991231"]) expect(startsWithDate(name), name).toBe(byCalendar(name))
  })
  it("name the product os:release:arch:variant", () => {
    expect(productKey(ref)).toBe("debian:bookworm:amd64:default")
    expect(productArch({ ...ref, arch: "x86_64" })).toBe("amd64")
  })
})

describe("isWithin", () => {
  it("is the root or below it, never a sibling that shares its prefix", () => {
    expect(isWithin("/srv/www", "/srv/www")).toBe(true)
    expect(isWithin("/srv/www", "/srv/www/images/a")).toBe(true)
    expect(isWithin("/srv/www", "/srv/www2/a")).toBe(false)
    expect(isWithin("/srv/www", "/etc/passwd")).toBe(false)
  })
})

describe("planVersion", () => {
  const f = (name: string, size = 10) => ({ name, size })
  it("needs a metadata tarball and a rootfs, and ignores every other file", () => {
    const plan = planVersion(ref, [f("lxd.tar.xz"), f("rootfs.squashfs"), f("SHA256SUMS"), f("notes.txt")])
    expect(plan._tag).toBe("VersionPlan")
    if (plan._tag !== "VersionPlan") return
    expect(plan.metadata.map((m) => m.name)).toEqual(["lxd.tar.xz"])
    expect(plan.rootfs.map((r) => [r.name, r.ftype])).toEqual([["rootfs.squashfs", "squashfs"]])
  })
  it("refuses a version without metadata or without rootfs, naming the folder", () => {
    expect(planVersion(ref, [f("rootfs.squashfs")])).toMatchObject({ _tag: "Refusal", path: "debian/bookworm/amd64/default/20240101_10:00", reason: expect.stringContaining("no metadata") })
    expect(planVersion(ref, [f("incus.tar.xz"), f(".rootfs.squashfs.Ab12Cd")])).toMatchObject({ _tag: "Refusal", reason: expect.stringContaining("no rootfs") })
  })
  it("refuses an empty file, naming it", () => {
    expect(planVersion(ref, [f("lxd.tar.xz"), f("rootfs.squashfs", 0)])).toMatchObject({ path: "debian/bookworm/amd64/default/20240101_10:00/rootfs.squashfs", reason: "empty file" })
  })
  it("refuses an unknown architecture folder and unsafe folder names", () => {
    expect(planVersion({ ...ref, arch: "foo" }, [f("lxd.tar.xz"), f("rootfs.squashfs")])).toMatchObject({ reason: expect.stringContaining("unknown architecture folder 'foo'") })
    expect(planVersion({ ...ref, variant: "my variant" }, [f("lxd.tar.xz"), f("rootfs.squashfs")])).toMatchObject({ reason: expect.stringContaining("characters") })
  })
  it("refuses two rootfs files of one type: their combined hashes would share one key", () => {
    expect(planVersion(ref, [f("lxd.tar.xz"), f("a.squashfs"), f("b.squashfs")])).toMatchObject({ reason: expect.stringContaining("two rootfs files of type squashfs") })
  })
  it("accepts a container and a VM beside one metadata file", () => {
    const plan = planVersion(ref, [f("lxd.tar.xz"), f("rootfs.squashfs"), f("disk.qcow2"), f("rootfs.tar.xz")])
    expect(plan._tag === "VersionPlan" && plan.rootfs.map((r) => r.ftype)).toEqual(["disk-kvm.img", "squashfs", "root.tar.xz"])
  })
  it("takes one unified tarball alone as a unified image; split files win, two unified tarballs refuse", () => {
    const plan = planVersion(ref, [f("8fa9230ce776.tar.gz"), f("SHA256SUMS"), f("notes.txt")])
    expect(plan).toMatchObject({ _tag: "VersionPlan", metadata: [], rootfs: [], unified: { name: "8fa9230ce776.tar.gz" }, sums: { name: "SHA256SUMS" } })
    for (const name of ["image.tar.xz", "image.tar.zst"]) expect(planVersion(ref, [f(name)])).toMatchObject({ unified: { name } })
    const split = planVersion(ref, [f("lxd.tar.xz"), f("rootfs.squashfs"), f("extra.tar.gz")])
    expect(split).toMatchObject({ _tag: "VersionPlan", metadata: [{ name: "lxd.tar.xz" }] })
    expect(split).not.toHaveProperty("unified")
    expect(planVersion(ref, [f("a.tar.gz"), f("b.tar.xz")])).toMatchObject({ _tag: "Refusal", reason: "two unified image tarballs (a.tar.gz, b.tar.xz): one image per version" })
    expect(planVersion(ref, [f("a.tar.gz", 0)])).toMatchObject({ _tag: "Refusal", reason: "empty file" })
    for (const name of [".a.tar.gz", "rootfs.tar.xz", "lxd.tar.xz", "a.tar.bz2", ".tar.gz"]) expect(planVersion(ref, [f(name)])).toMatchObject({ _tag: "Refusal" })
  })
})

