import { NodeContext } from "@effect/platform-node"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { readFileSync, statSync, utimesSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { CatalogStore, sameBytes } from "../../src/indexer/CatalogStore.js"
import { identityOf } from "../../src/tree/Identity.js"
import { tempDir } from "../support/Images.js"

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

describe("the store's look at the files on disk", () => {
  layer(CatalogStore.Default.pipe(Layer.provideMerge(NodeContext.layer)))((it) => {
    it.effect("takes images.json as the caller knows it while it is that very file, and reads it once it changed", () =>
      Effect.gen(function* () {
        const store = yield* CatalogStore
        const streams = tempDir("lis-store-")
        const file = join(streams, "images.json")
        writeFileSync(file, "on disk\n")
        writeFileSync(join(streams, "index.json"), "index\n")
        const files = { images: [b("the "), b("text\n")], index: b("index\n") }
        // the caller says the file holds the text: nothing to write, and the file is not looked into
        const known = { file: identityOf("images.json", statSync(file)), bytes: files.images }
        expect(yield* store.write(streams, files, { checkDisk: true, imagesKnown: known })).toBe(false)
        expect(readFileSync(file, "utf8")).toBe("on disk\n")
        // the file changed since (its times moved): read, compared, written
        utimesSync(file, new Date(1e12), new Date(1e12))
        expect(yield* store.write(streams, files, { checkDisk: true, imagesKnown: known })).toBe(true)
        expect(readFileSync(file, "utf8")).toBe("the text\n")
      })
    )
  })
})
