/**
 * The two files clients read, as Schemas (SIMPLESTREAMS.md §2, §3). The Go structs on the client side are
 * strictly typed: one wrong JSON type fails the whole remote, so every catalog is validated before it is written.
 */
import { Schema } from "effect"
import { isKnownArchitecture } from "./Architecture.js"

export const Sha256 = Schema.String.pipe(
  Schema.pattern(/^[0-9a-f]{64}$/, { message: () => "a sha256: 64 lower-case hex characters" })
)

/** Emitted paths are relative to the remote URL and use only characters that survive both clients' joins. */
export const ItemPath = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9._:-][A-Za-z0-9._:/-]*$/, {
    message: () => "a relative path of [A-Za-z0-9._:/-] without a leading slash"
  })
)

export const Item = Schema.Struct({
  ftype: Schema.String,
  path: ItemPath,
  sha256: Sha256,
  size: Schema.Int.pipe(Schema.nonNegative()),
  combined_sha256: Schema.optional(Sha256),
  combined_rootxz_sha256: Schema.optional(Sha256),
  combined_squashfs_sha256: Schema.optional(Sha256),
  "combined_disk-kvm-img_sha256": Schema.optional(Sha256)
})
export type Item = typeof Item.Type

/** Clients skip a version whose key does not start with a YYYYMMDD date (§9). */
export const VersionKey = Schema.String.pipe(
  Schema.pattern(/^\d{8}/, { message: () => "a version key starting with YYYYMMDD" })
)

export const Version = Schema.Struct({
  items: Schema.Record({ key: Schema.String, value: Item })
})
export type Version = typeof Version.Type

export const Product = Schema.Struct({
  aliases: Schema.String,
  arch: Schema.String.pipe(
    Schema.filter((a) => isKnownArchitecture(a), { message: () => "an architecture LXD and Incus know" })
  ),
  os: Schema.String,
  release: Schema.String,
  release_title: Schema.String,
  variant: Schema.String,
  // string values only: a JSON boolean here fails the whole remote in both clients (§3.2)
  requirements: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  lxd_requirements: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  versions: Schema.Record({ key: VersionKey, value: Version })
})
export type Product = typeof Product.Type

export const Images = Schema.Struct({
  content_id: Schema.Literal("images"),
  datatype: Schema.Literal("image-downloads"),
  format: Schema.Literal("products:1.0"),
  products: Schema.Record({ key: Schema.String, value: Product })
})
export type Images = typeof Images.Type

export const IndexEntry = Schema.Struct({
  datatype: Schema.Literal("image-downloads"),
  path: Schema.Literal("streams/v1/images.json"),
  format: Schema.Literal("products:1.0"),
  // An empty list makes clients skip the catalog entirely (§1.2), so an entry always lists something.
  products: Schema.NonEmptyArray(Schema.String)
})

export const Index = Schema.Struct({
  format: Schema.Literal("index:1.0"),
  index: Schema.Struct({ images: Schema.optional(IndexEntry) })
})
export type Index = typeof Index.Type

/** JSON text with object keys sorted at every depth: the same catalog always gives the same bytes. */
export const canonicalJson = (value: unknown): string => `${JSON.stringify(sortKeys(value), null, 2)}\n`

/**
 * `value` with the keys of every object in sorted order. What is in that order already is not copied: most of
 * a catalog's objects are, and a restart encodes every product.
 */
const sortKeys = (value: unknown): unknown => {
  if (Array.isArray(value)) {
    let copy: Array<unknown> | undefined
    for (let i = 0; i < value.length; i++) {
      const sorted = sortKeys(value[i])
      if (sorted !== value[i]) (copy ??= value.slice())[i] = sorted
    }
    return copy ?? value
  }
  if (value !== null && typeof value === "object") {
    const record = value as Record<string, unknown>
    const keys = Object.keys(record)
    const proto = Object.getPrototypeOf(value)
    // a plain object whose keys come in sorted order (as Object.keys lists them, and JSON.stringify writes them)
    let inOrder = proto === Object.prototype || proto === null
    for (let i = 1; inOrder && i < keys.length; i++) inOrder = keys[i - 1]! < keys[i]!
    let copy: Record<string, unknown> | undefined
    if (inOrder) {
      for (const k of keys) {
        const sorted = sortKeys(record[k])
        if (sorted !== record[k]) (copy ??= { ...record })[k] = sorted
      }
      return copy ?? value
    }
    return Object.fromEntries(keys.sort().map((k) => [k, sortKeys(record[k])]))
  }
  return value
}
