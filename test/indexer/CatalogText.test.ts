/** images.json cut back into its products' pieces, as `add` keeps all but one product as written. */
import { describe, expect, it } from "@effect/vitest"
import { CatalogText } from "../../src/indexer/CatalogText.js"
import { canonicalJson, type Images } from "../../src/simplestreams/Streams.js"
import { product } from "../support/Products.js"

const images = (keys: ReadonlyArray<string>): Images => ({
  content_id: "images",
  datatype: "image-downloads",
  format: "products:1.0",
  products: Object.fromEntries(keys.map((k, i) => [k, product({ release_title: `title "${i}",\n    "x` })]))
})

describe("CatalogText.fromWritten", () => {
  it.each([[[]], [["a:b:amd64:c"]], [["a:b:amd64:c", "b:b:amd64:c", "z:1:arm64:default"]]])("gives back the pieces of %j, the same bytes again", (keys) => {
    const written = Buffer.from(canonicalJson(images(keys)))
    const text = CatalogText.fromWritten(written, keys)!
    expect(text.keys()).toEqual(keys)
    expect(text.images().equals(written)).toBe(true)
    // a product set again is encoded alone, the rest stay as they were
    if (keys.length > 0) {
      text.setProduct(keys[0]!, product({ os: "Other" }))
      expect(text.imagesJson()).toBe(canonicalJson({ ...images(keys), products: { ...images(keys).products, [keys[0]!]: product({ os: "Other" }) } }))
    }
  })

  it("gives nothing for bytes laid out otherwise, or other products", () => {
    const keys = ["a:b:amd64:c", "b:b:amd64:c"]
    expect(CatalogText.fromWritten(Buffer.from(JSON.stringify(images(keys))), keys)).toBeUndefined()
    expect(CatalogText.fromWritten(Buffer.from(canonicalJson(images(keys))), ["a:b:amd64:c"])).toBeUndefined()
    expect(CatalogText.fromWritten(Buffer.from(canonicalJson(images(keys))), [...keys, "c:b:amd64:c"])).toBeUndefined()
    expect(CatalogText.fromWritten(Buffer.from(canonicalJson(images(keys))), [])).toBeUndefined()
  })
})
