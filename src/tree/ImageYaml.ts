/**
 * `image.yaml` in a version folder, pure: names and requirements a folder cannot say, with the keys of
 * lxd-imagebuilder's file where they overlap (`distro_name`, `release_aliases`, `requirements`). The newest
 * version's file speaks for its product. YAML text in, the checked values or a reason out.
 */
import { Either, ParseResult, Schema } from "effect"
import { isSeq, parse, parseDocument } from "yaml"

export const imageYamlName = "image.yaml"

/** A hand-written file of a few lines; a larger one is a mistake, and is not read into memory. */
export const imageYamlLimit = 64 * 1024

/**
 * One alias: clients split the product's `aliases` on commas and take each piece verbatim (SIMPLESTREAMS.md
 * §8.1), so a comma or a blank would make another alias, and path characters are all a name needs.
 */
export const aliasPattern = /^[A-Za-z0-9._:+-][A-Za-z0-9._:/+-]*$/

const AliasName = Schema.String.pipe(
  Schema.pattern(aliasPattern, { message: () => "an alias of A-Z a-z 0-9 . _ : / + - (no commas or blanks)" })
)

/** YAML reads `12` or `false` as a number or a boolean; in names and requirement values they are meant as text. */
const Scalar = Schema.Union(
  Schema.String,
  Schema.transform(Schema.Union(Schema.Boolean, Schema.Number), Schema.String, {
    strict: false,
    decode: (v) => String(v),
    encode: (s) => s
  })
)

/** An alias as written in YAML: `12` is the alias "12". */
const AliasItem = Schema.compose(Scalar, AliasName)

/** lxd-imagebuilder writes release aliases as one comma-delimited string; a list is taken too. */
const AliasList = Schema.Union(
  Schema.Array(AliasItem),
  Schema.transform(Scalar, Schema.Array(AliasName), {
    strict: true,
    decode: (s) => s.split(",").map((a) => a.trim()).filter((a) => a.length > 0),
    encode: (list) => list.join(",")
  })
)

const Text = Schema.String.pipe(Schema.minLength(1, { message: () => "a non-empty string" }))

export const ImageYaml = Schema.Struct({
  aliases: Schema.optional(Schema.Array(AliasItem)),
  release_aliases: Schema.optional(Schema.Record({ key: Schema.String, value: AliasList })),
  distro_name: Schema.optional(Text),
  release_title: Schema.optional(Text),
  requirements: Schema.optional(Schema.Record({ key: Schema.String, value: Scalar })),
  description: Schema.optional(Schema.String)
})
export type ImageYaml = typeof ImageYaml.Type

const decode = Schema.decodeUnknownEither(ImageYaml, { onExcessProperty: "error" })

/** The checked file, or why it is refused (the first problem, with where). */
export const parseImageYaml = (text: string): Either.Either<ImageYaml, string> => {
  let doc: unknown
  try {
    doc = parse(text)
  } catch (e) {
    return Either.left(`not valid YAML: ${(e as Error).message.split("\n")[0]}`)
  }
  // an empty file says nothing, and is allowed
  if (doc === null || doc === undefined) return Either.right({})
  if (typeof doc !== "object" || Array.isArray(doc)) return Either.left("not a YAML mapping")
  return Either.mapLeft(decode(doc), (error) => {
    const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
    if (!issue) return error.message
    const where = issue.path.map(String).join(".")
    return where ? `${where}: ${issue.message}` : issue.message
  })
}

/**
 * An image.yaml with these aliases added to its `aliases` (those it lists already stay where they are; other
 * keys and comments stay as written), and which of them were new. Left with the reason when the file, or an
 * alias, is not one a version may have.
 */
export const withAliases = (
  text: string,
  aliases: ReadonlyArray<string>
): Either.Either<{ readonly text: string; readonly added: ReadonlyArray<string> }, string> =>
  Either.flatMap(parseImageYaml(text), (current) => {
    const listed = new Set((current.aliases ?? []).map((a) => a.toLowerCase()))
    const added = [...new Set(aliases)].filter((a) => !listed.has(a.toLowerCase()))
    if (added.length === 0) return Either.right({ text, added })
    const doc = parseDocument(text)
    const list = doc.contents === null ? undefined : doc.get("aliases", true)
    if (isSeq(list)) for (const a of added) list.add(doc.createNode(a))
    else doc.set("aliases", doc.createNode(added))
    const written = doc.toString()
    return Either.map(parseImageYaml(written), () => ({ text: written, added }))
  })
