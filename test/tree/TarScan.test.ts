import { describe, expect, it } from "vitest"
import { TarScan } from "../../src/tree/TarScan.js"
import { metadataYaml, tarEntry, tarHeader } from "../support/Images.js"

const MiB = 1024 * 1024
const tooLarge = { _tag: "Invalid", reason: "decompresses to more than 32 MiB: not a metadata tarball" }
const archive = (...entries: ReadonlyArray<Buffer>) => Buffer.concat([...entries, Buffer.alloc(1024)])

describe("TarScan caps the bytes it reads", () => {
  it("refuses at the byte past 32 MiB, however the entries skip their bodies, and stays refused", () => {
    const scan = new TarScan()
    expect(scan.push(tarHeader("zeros", 64 * MiB))).toEqual({ _tag: "More" })
    const mib = new Uint8Array(MiB)
    for (let i = 0; i < 31; i++) expect(scan.push(mib)).toEqual({ _tag: "More" })
    expect(scan.push(mib.subarray(512))).toEqual({ _tag: "More" }) // exactly 32 MiB so far
    expect(scan.push(new Uint8Array(1))).toEqual(tooLarge)
    expect(scan.push(tarEntry("metadata.yaml", metadataYaml()))).toEqual(tooLarge)
    expect(scan.end()).toEqual(tooLarge)
  })

  it("keeps what the first 32 MiB settle, even when the chunk that settles it runs past the cap", () => {
    const tail = archive(tarEntry("metadata.yaml", metadataYaml()))
    const scan = new TarScan()
    scan.push(tarHeader("zeros", 32 * MiB - 512 - tail.length))
    const result = scan.push(Buffer.concat([new Uint8Array(32 * MiB - 512 - tail.length), tail, new Uint8Array(MiB)]))
    expect(result._tag).toBe("Found")
  })

  it("refuses a whole archive pushed at once when its end lies past 32 MiB", () => {
    const big = archive(tarEntry("zeros", new Uint8Array(32 * MiB)), tarEntry("metadata.yaml", metadataYaml()))
    expect(new TarScan().push(big)).toEqual(tooLarge)
  })
})
