/**
 * The text of `images.json` and `index.json`, kept per product so that a change re-encodes only the products
 * it touched: each product is validated with its Schema and encoded once, and the files are joined from
 * those pieces. The bytes are exactly `canonicalJson` of the whole catalog, whichever way they were made, so
 * `update` and `watch` write the same bytes for the same tree. Pure: no I/O.
 */
import { Either, ParseResult, Schema } from "effect"
import { canonicalJson, type Images, type Index, Product } from "../simplestreams/Streams.js"

const indent = (text: string, by: string) => text.replace(/\n/g, `\n${by}`)

/** Why a product cannot be encoded, in words: the first problem the Schema found, with where. */
export const schemaProblem = (error: ParseResult.ParseError): string => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (!issue) return error.message
  return `${issue.path.map(String).join(".")}: ${issue.message}`
}

/** The index of these product keys (sorted), as clients read it: no entry at all when there is none. */
export const indexOf = (keys: ReadonlyArray<string>): Index => ({
  format: "index:1.0",
  index:
    keys.length === 0
      ? {}
      : { images: { datatype: "image-downloads", path: "streams/v1/images.json", format: "products:1.0", products: [keys[0]!, ...keys.slice(1)] } }
})

/** The product keys an index.json names, or none when it is not one. */
export const indexedProducts = (bytes: Uint8Array | undefined): ReadonlyArray<string> => {
  try {
    const parsed = JSON.parse(Buffer.from(bytes ?? []).toString("utf8")) as { index?: { images?: { products?: unknown } } }
    const products = parsed.index?.images?.products
    return Array.isArray(products) ? products.filter((p): p is string => typeof p === "string") : []
  } catch {
    return []
  }
}

const validateProduct = Schema.validateEither(Product)

/** What is wrong with a product for the clients, if anything: checked, not encoded. */
export const productProblem = (product: Product): string | undefined => {
  const checked = validateProduct(product)
  return Either.isLeft(checked) ? schemaProblem(checked.left) : undefined
}

export const encodeProduct = (product: Product): Either.Either<string, string> =>
  Either.mapLeft(
    Either.map(Schema.encodeEither(Product)(product), (encoded) => canonicalJson(encoded).trimEnd()),
    schemaProblem
  )

const head = Buffer.from(`{\n  "content_id": "images",\n  "datatype": "image-downloads",\n  "format": "products:1.0",\n  "products": {\n`)
const separator = Buffer.from(",\n")
const tail = Buffer.from("\n  }\n}\n")
const empty = Buffer.from(`{\n  "content_id": "images",\n  "datatype": "image-downloads",\n  "format": "products:1.0",\n  "products": {}\n}\n`)

/** The product a piece of CatalogText holds (a piece is `"key": {…}`, indented). */
export const productOfPiece = (key: string, piece: Uint8Array): Product =>
  (JSON.parse(`{${Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength).toString("utf8")}}`) as Record<string, Product>)[key]!

export class CatalogText {
  /**
   * Each product as it stands in images.json (`    "key": {…}`, indented), already UTF-8: the file is joined
   * from these bytes, so a publish at 10,000 versions copies 10 MB instead of building and encoding a string.
   */
  private readonly pieces = new Map<string, Buffer>()
  private sortedKeys: Array<string> | undefined = []

  /** Sets (or, with undefined, removes) one product; a product that does not validate is left out and named. */
  setProduct(key: string, product: Product | undefined, options: { readonly checked?: boolean } = {}): Either.Either<void, string> {
    if (product === undefined) {
      if (this.pieces.delete(key)) this.sortedKeys = undefined
      return Either.void
    }
    // a product made of versions each checked when it was accepted needs no second check (a restart
    // renders every product at once)
    const encoded = options.checked ? Either.right(canonicalJson(product).trimEnd()) : encodeProduct(product)
    if (Either.isLeft(encoded)) {
      if (this.pieces.delete(key)) this.sortedKeys = undefined
      return Either.left(encoded.left)
    }
    const before = this.pieces.get(key)
    if (before === undefined) this.sortedKeys = undefined
    const piece = Buffer.from(`    ${JSON.stringify(key)}: ${indent(encoded.right, "    ")}`)
    // the same bytes keep the same Buffer: the store tells an unchanged catalog by its pieces' identities
    if (before === undefined || !before.equals(piece)) this.pieces.set(key, piece)
    return Either.void
  }

  get size(): number {
    return this.pieces.size
  }

  keys(): ReadonlyArray<string> {
    this.sortedKeys ??= CatalogText.fileOrder(this.pieces.keys())
    return this.sortedKeys
  }

  /** Product keys in the order images.json lists them: canonicalJson's, Object.keys of an object built from the sorted keys. */
  static fileOrder(keys: Iterable<string>): Array<string> {
    return Object.keys(Object.fromEntries([...keys].sort().map((k) => [k, 0])))
  }

  /**
   * Each product's piece, in file order. A piece is the same Buffer for as long as its product is unchanged, so
   * whoever renders something of each product (the catalog page) renders again only what changed.
   */
  snapshot(): ReadonlyArray<readonly [string, Buffer]> {
    return this.keys().map((k) => [k, this.pieces.get(k)!] as const)
  }

  /**
   * images.json as the pieces it is joined from, in order. Written as they are: joining 10 MB into a new
   * Buffer on every publish cost more than the write (a fresh allocation is page-faulted in every time).
   */
  imagesChunks(): ReadonlyArray<Buffer> {
    const keys = this.keys()
    if (keys.length === 0) return [empty]
    const parts: Array<Buffer> = [head]
    keys.forEach((k, i) => {
      if (i > 0) parts.push(separator)
      parts.push(this.pieces.get(k)!)
    })
    parts.push(tail)
    return parts
  }

  /** images.json, as bytes. */
  images(): Buffer {
    return Buffer.concat(this.imagesChunks())
  }

  imagesJson(): string {
    return this.images().toString("utf8")
  }

  index(): Index {
    return indexOf(this.keys())
  }

  indexJson(): string {
    return canonicalJson(this.index())
  }

  /** Both files, as the store writes them. */
  files(): { readonly images: ReadonlyArray<Uint8Array>; readonly index: Uint8Array } {
    return { images: this.imagesChunks(), index: Buffer.from(this.indexJson()) }
  }

  /**
   * images.json as this program wrote it, cut back into its products' pieces without encoding any (`add`
   * keeps every product but one as it was); undefined when the bytes are not laid out as `images()` lays
   * them out for these product keys (in file order).
   */
  static fromWritten(bytes: Uint8Array, keys: ReadonlyArray<string>): CatalogText | undefined {
    const file = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const text = new CatalogText()
    if (keys.length === 0) return file.equals(empty) ? text : undefined
    if (file.length < head.length + tail.length || !file.subarray(0, head.length).equals(head) || !file.subarray(file.length - tail.length).equals(tail)) return undefined
    // a product's own lines are indented deeper, and JSON strings hold no raw newline: this only starts a product
    const next = Buffer.from(`,\n    "`)
    let start = head.length
    for (const [i, key] of keys.entries()) {
      const end = file.indexOf(next, start)
      if (i === keys.length - 1 ? end >= 0 : end < 0) return undefined
      const piece = file.subarray(start, end < 0 ? file.length - tail.length : end)
      const named = Buffer.from(`    ${JSON.stringify(key)}: {`)
      if (!piece.subarray(0, named.length).equals(named)) return undefined
      text.pieces.set(key, piece)
      start = end + separator.length
    }
    text.sortedKeys = undefined
    return text
  }

  /** The whole catalog from scratch, for callers that hold products as values. */
  static of(images: Images): CatalogText {
    const text = new CatalogText()
    for (const [key, product] of Object.entries(images.products)) text.setProduct(key, product)
    return text
  }
}
