/**
 * An upstream simplestreams server as the clients read it (SIMPLESTREAMS.md §1–§3), pure: its `index.json` and
 * catalogs as Schemas typed like the clients' Go structs (a wrong JSON type fails the whole remote there, and
 * here; unknown keys are ignored, missing ones are empty), and item paths resolved against the remote URL the way
 * both clients join them. Any generator's catalog reads the same: ours, incus-simplestreams' flat
 * content-addressed one, lxd-imagebuilder's tree.
 */
import { posix } from "node:path"
import { Either, ParseResult, Schema } from "effect"

const Text = Schema.String
const Strings = Schema.Record({ key: Schema.String, value: Schema.String })

export const UpstreamItem = Schema.Struct({
  ftype: Schema.optional(Text),
  path: Schema.optional(Text),
  sha256: Schema.optional(Text),
  // int64 in the clients: a string or a fraction there fails the remote
  size: Schema.optional(Schema.Int),
  combined_sha256: Schema.optional(Text),
  combined_rootxz_sha256: Schema.optional(Text),
  combined_squashfs_sha256: Schema.optional(Text),
  "combined_disk-kvm-img_sha256": Schema.optional(Text),
  "combined_disk1-img_sha256": Schema.optional(Text),
  "combined_uefi1-img_sha256": Schema.optional(Text),
  combined_type: Schema.optional(Text)
})
export type UpstreamItem = typeof UpstreamItem.Type

export const UpstreamVersion = Schema.Struct({ items: Schema.optional(Schema.Record({ key: Schema.String, value: UpstreamItem })) })

export const UpstreamProduct = Schema.Struct({
  aliases: Schema.optional(Text),
  arch: Schema.optional(Text),
  os: Schema.optional(Text),
  release: Schema.optional(Text),
  release_title: Schema.optional(Text),
  variant: Schema.optional(Text),
  requirements: Schema.optional(Strings),
  lxd_requirements: Schema.optional(Strings),
  versions: Schema.optional(Schema.Record({ key: Schema.String, value: UpstreamVersion }))
})
export type UpstreamProduct = typeof UpstreamProduct.Type

export const UpstreamCatalog = Schema.Struct({ products: Schema.optional(Schema.Record({ key: Schema.String, value: UpstreamProduct })) })
export type UpstreamCatalog = typeof UpstreamCatalog.Type

export const UpstreamIndex = Schema.Struct({
  format: Schema.optional(Text),
  index: Schema.Record({
    key: Schema.String,
    value: Schema.Struct({ datatype: Schema.optional(Text), path: Schema.optional(Text), products: Schema.optional(Schema.Array(Text)) })
  })
})
export type UpstreamIndex = typeof UpstreamIndex.Type

/** Where the clients always look first (the path is fixed in both). */
export const indexPath = "streams/v1/index.json"

/** The first problem of a decode, with where it is. */
const firstProblem = (error: ParseResult.ParseError): string => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (!issue) return error.message
  const where = issue.path.map(String).join(".")
  return where ? `${where}: ${issue.message}` : issue.message
}

const parse = <A, I>(schema: Schema.Schema<A, I>, text: string): Either.Either<A, string> => {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (e) {
    return Either.left(`not JSON (${(e as Error).message})`)
  }
  return Either.mapLeft(Schema.decodeUnknownEither(schema)(doc), firstProblem)
}

/**
 * The catalogs an index names, as the clients pick them: entries of datatype `image-downloads` with a path and
 * a non-empty product list, in key order. None is "not a simplestreams image server".
 */
export const parseIndex = (text: string): Either.Either<ReadonlyArray<string>, string> =>
  Either.flatMap(parse(UpstreamIndex, text), (index) => {
    const paths = Object.keys(index.index)
      .sort()
      .map((k) => index.index[k]!)
      .filter((e) => e.datatype === "image-downloads" && (e.products?.length ?? 0) > 0 && (e.path ?? "") !== "")
      .map((e) => e.path!)
    return paths.length === 0 ? Either.left("its index names no image catalog (no entry of datatype image-downloads with products)") : Either.right(paths)
  })

export const parseCatalog = (text: string): Either.Either<UpstreamCatalog, string> => parse(UpstreamCatalog, text)

/**
 * A path of the index or a catalog, resolved as both clients resolve it (§1.3): always below the remote URL (one
 * trailing slash of which is dropped), joined and cleaned as `path.Join` does, so a leading `/` stays below the
 * remote and `..` cannot climb above the host. The remote's query and fragment are dropped.
 */
export const resolveUpstream = (remote: string, path: string): string => {
  const url = new URL(remote)
  url.search = ""
  url.hash = ""
  url.pathname = posix.join(url.pathname, path)
  return url.toString()
}

/** A URL fit for a log line: no password, no user. */
export const displayUrl = (url: string): string => {
  try {
    const u = new URL(url)
    u.username = ""
    u.password = ""
    return u.toString()
  } catch {
    return url
  }
}
