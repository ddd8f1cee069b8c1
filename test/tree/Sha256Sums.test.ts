import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { isImageFileName } from "../../src/tree/Layout.js"
import { checkSums, parseSha256Sums } from "../../src/tree/Sha256Sums.js"

const a = "8fa9230ce77654206dee30a6e9a47084b34e297f289516be22d136bdce209568"
const b = "14a0fb80f0040b11cf4b192c19a17c38751df757e551b8e512ddd303fd6e68bb"

describe("parseSha256Sums", () => {
  it("reads sha256sum's text and binary lines, ./names, CRLF and blank lines", () => {
    const parsed = parseSha256Sums(`${a}  lxd.tar.xz\r\n\n${b.toUpperCase()} *./rootfs.squashfs\n`)
    expect(Either.getOrThrow(parsed)).toEqual(new Map([["lxd.tar.xz", a], ["rootfs.squashfs", b]]))
    expect(Either.getOrThrow(parseSha256Sums(""))).toEqual(new Map())
  })
  it("refuses a line that is not <64 hex>  <name>, with its number", () => {
    for (const bad of [`${a} lxd.tar.xz`, `${a.slice(1)}  lxd.tar.xz`, `SHA256 (lxd.tar.xz) = ${a}`, `${a}  sub/lxd.tar.xz`, `${a}  `, "not hashed"]) {
      expect(parseSha256Sums(`${b}  rootfs.squashfs\n${bad}\n`)).toEqual(Either.left({ line: 2, reason: "is not '<64 hex digits>  <file name>'" }))
    }
  })
  it("refuses a file listed twice with two sums, and takes it twice with one", () => {
    expect(parseSha256Sums(`${a}  lxd.tar.xz\n${b}  lxd.tar.xz\n`)).toEqual(Either.left({ line: 2, reason: "lists lxd.tar.xz a second time, with another sha256" }))
    expect(Either.isRight(parseSha256Sums(`${a}  lxd.tar.xz\n${a}  lxd.tar.xz\n`))).toBe(true)
  })
})

describe("checkSums", () => {
  const sums = new Map([["lxd.tar.xz", a], ["rootfs.squashfs", b], ["notes.txt", a]])
  const files = [{ name: "lxd.tar.xz", sha256: a }, { name: "rootfs.squashfs", sha256: b }]
  const present = ["lxd.tar.xz", "rootfs.squashfs"]
  it("passes when every published file is listed and matches (other listed files are not its business)", () => {
    expect(checkSums(sums, files, present, isImageFileName)).toBeUndefined()
  })
  it("names the file that does not match, or is not listed", () => {
    expect(checkSums(sums, [files[0]!, { name: "rootfs.squashfs", sha256: a }], present, isImageFileName)).toEqual({
      file: "rootfs.squashfs",
      reason: expect.stringMatching(/^sha256 8fa9.* does not match 14a0.* in SHA256SUMS/)
    })
    expect(checkSums(new Map([["lxd.tar.xz", a]]), files, present, isImageFileName)).toEqual({ file: "rootfs.squashfs", reason: "not listed in SHA256SUMS" })
  })
  it("holds back a version while an image file it lists has not arrived", () => {
    const more = new Map([...sums, ["disk.qcow2", a]])
    expect(checkSums(more, files, present, isImageFileName)).toEqual({ file: "disk.qcow2", reason: expect.stringContaining("listed in SHA256SUMS but not in the folder") })
  })
})
