import { describe, expect, it } from "vitest"
import { sameBytes } from "../../src/indexer/CatalogStore.js"

const b = (s: string) => Buffer.from(s)

describe("sameBytes: images.json compared in pieces, never joined", () => {
  it("sees the same bytes however they are cut", () => {
    expect(sameBytes(b("hello world"), [b("hel"), b("lo wo"), b("rld")])).toBe(true)
    expect(sameBytes([b("he"), b("llo world")], [b("hello "), b("world")])).toBe(true)
    expect(sameBytes([b(""), b("abc")], b("abc"))).toBe(true)
  })
  it("sees one byte changed, a length changed, and nothing at all", () => {
    expect(sameBytes(b("hello world"), [b("hel"), b("lo wo"), b("rlD")])).toBe(false)
    expect(sameBytes(b("hello world"), [b("hello"), b(" world!")])).toBe(false)
    expect(sameBytes(undefined, b("x"))).toBe(false)
  })
  it("takes the same pieces as equal", () => {
    const piece = b("{…}")
    expect(sameBytes([b("a"), piece], [b("a"), piece])).toBe(true)
  })
})
