import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { placeImage, rootfsKindOf, versionOfCreation } from "../../src/tree/Placement.js"

const info = { architecture: "x86_64", creationDate: 1704103200, properties: { os: "Debian", release: "bookworm", variant: "cloud" } }

describe("placeImage", () => {
  it("places an export by its metadata.yaml: os lower-cased, the Debian arch name, the version from creation_date (UTC)", () => {
    expect(versionOfCreation(1704103200)).toBe("20240101_10:00")
    expect(placeImage(info, {})).toEqual(Either.right({ os: "debian", release: "bookworm", arch: "amd64", variant: "cloud", version: "20240101_10:00" }))
  })
  it("takes every part from a flag first, and 'default' for an image without a variant", () => {
    expect(placeImage({ ...info, properties: { os: "Debian", release: "12" } }, { os: "Deb", arch: "x86_64", version: "20250101_00:00" })).toEqual(
      Either.right({ os: "Deb", release: "12", arch: "x86_64", variant: "default", version: "20250101_00:00" })
    )
  })
  it("names the key that is missing, and refuses what the tree would refuse", () => {
    expect(placeImage({ ...info, properties: { release: "x" } }, {})).toEqual(Either.left("metadata.yaml has no properties.os: give --os"))
    expect(placeImage({ ...info, properties: { os: "x" } }, {})).toEqual(Either.left("metadata.yaml has no properties.release: give --release"))
    expect(placeImage(info, { release: "my release" })).toEqual(Either.left(expect.stringContaining("has characters other than")))
    expect(placeImage(info, { arch: "sparc" })).toEqual(Either.left(expect.stringContaining("unknown architecture")))
  })
  it("refuses an --arch that is not the metadata's architecture, and takes another name of it", () => {
    expect(placeImage(info, { arch: "arm64" })).toEqual(Either.left("--arch arm64 is not the architecture metadata.yaml gives (x86_64)"))
    expect(placeImage(info, { arch: "x86_64" })).toEqual(Either.right(expect.objectContaining({ arch: "x86_64" })))
  })
})

describe("rootfsKindOf", () => {
  it("tells a squashfs, a qcow2 and an xz root tarball by their first bytes", () => {
    expect(rootfsKindOf(Buffer.from("hsqs...."), "none")).toBe("squashfs")
    expect(rootfsKindOf(Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]), "none")).toBe("qcow2")
    expect(rootfsKindOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]), "xz")).toBe("tarball")
    expect(rootfsKindOf(Buffer.from("random"), "none")).toBeUndefined()
  })
})
