import { describe, expect, it } from "@effect/vitest"
import { detectCompression, parseMetadataYaml } from "../../src/tree/MetadataRules.js"

describe("metadata.yaml", () => {
  it("needs a known architecture and a non-zero creation_date", () => {
    expect(parseMetadataYaml("architecture: x86_64\ncreation_date: 1724313720\nproperties:\n  os: Debian\n  release: 12\n")).toEqual({
      architecture: "x86_64",
      creationDate: 1724313720,
      properties: { os: "Debian", release: "12" }
    })
    expect(parseMetadataYaml("creation_date: 1")).toEqual({ reason: "metadata.yaml has no architecture" })
    expect(parseMetadataYaml("architecture: sparc\ncreation_date: 1")).toEqual({ reason: "metadata.yaml has an unknown architecture 'sparc'" })
    expect(parseMetadataYaml("architecture: amd64\ncreation_date: 0")).toMatchObject({ reason: expect.stringContaining("creation_date") })
    expect(parseMetadataYaml("architecture: amd64")).toMatchObject({ reason: expect.stringContaining("creation_date") })
    // an integer to JavaScript, no int64 to the daemons, which read it as one
    expect(parseMetadataYaml("architecture: amd64\ncreation_date: 1e300")).toEqual({ reason: "metadata.yaml has a creation_date out of range (1e+300): Unix seconds" })
    expect(parseMetadataYaml("architecture: amd64\ncreation_date: 9007199254740993")).toMatchObject({ reason: expect.stringContaining("out of range") })
    expect(parseMetadataYaml("- a\n- b")).toEqual({ reason: "metadata.yaml is not a YAML mapping" })
    expect(parseMetadataYaml("a: [")).toMatchObject({ reason: expect.stringContaining("not valid YAML") })
  })
  it("detects compression by magic bytes", () => {
    expect(detectCompression(Uint8Array.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))).toBe("xz")
    expect(detectCompression(Uint8Array.from([0x1f, 0x8b, 8]))).toBe("gzip")
    expect(detectCompression(Uint8Array.from([0x42, 0x5a, 0x68, 0x39]))).toBe("bzip2")
    expect(detectCompression(Uint8Array.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe("zstd")
    expect(detectCompression(Uint8Array.from([0x6d, 0x65]))).toBe("none")
  })
})
