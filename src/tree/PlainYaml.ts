/**
 * A fast reader for the plain YAML that metadata.yaml files are written in: block mappings and sequences of
 * plain or simply quoted scalars, as image builders write them. The full parser costs a quarter of a
 * millisecond for four lines, the largest part of indexing 10,000 tiny versions; this reads the same in a
 * hundredth of that. Anything outside that plain subset (comments, flow collections but `{}` and `[]`,
 * anchors, tags, block or multi-line scalars, escapes, nulls, numbers other than plain decimal integers,
 * tabs, non-ASCII text) gives `notPlain`, and the caller reads the text with the full parser. Pure.
 * For text it accepts, the value is exactly what `yaml`'s `parse` gives (tested against it).
 */

/** The text is not in the plain subset: read it with the full parser. */
export const notPlain: unique symbol = Symbol("notPlain")

type Value = string | number | boolean | ReadonlyArray<Value> | { readonly [key: string]: Value }

interface Line {
  readonly indent: number
  /** A mapping entry `key: value` (value undefined: the block below holds it), or a sequence item `- value`. */
  readonly key: string | undefined
  readonly value: string | undefined
}

/** Printable ASCII, without the characters that start a comment, an anchor, an alias, a tag, a directive, a block or flow scalar, or an escape. */
const plainLine = /^[ -~]*$/
const special = /[#&*!%|>@`\\{}[\]]/
const keyPattern = /^[A-Za-z_/][A-Za-z0-9_./-]*$/
/** Keys YAML reads as something other than a string, or that an object would take for its prototype. */
const oddKey = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE|[Nn]ull|NULL|__proto__)$/
/** The core schema's booleans, as yaml tests them. */
const yes = /^(?:[Tt]rue|TRUE)$/
const no = /^(?:[Ff]alse|FALSE)$/
/** The core schema's numbers and nulls (yaml's own tests), but plain decimal integers. */
const notString = /^(?:~|[Nn]ull|NULL|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/
const decimal = /^[0-9]{1,15}$/

/** A scalar as written after `key: ` or `- `, or `notPlain`. */
const scalar = (raw: string): Value | typeof notPlain => {
  if (raw === "{}") return {}
  if (raw === "[]") return []
  if (special.test(raw)) return notPlain
  const first = raw[0]!
  if (first === '"' || first === "'") {
    const inner = raw.slice(1, -1)
    return raw.length >= 2 && raw.endsWith(first) && !inner.includes(first) && !inner.includes("\\") ? inner : notPlain
  }
  // indicators that would start something else, a mapping inside a value, a trailing blank
  if (/^[-?:,]/.test(raw) || raw.includes(": ") || raw.endsWith(":") || raw.endsWith(" ")) return notPlain
  if (decimal.test(raw)) return Number(raw)
  if (yes.test(raw)) return true
  if (no.test(raw)) return false
  return notString.test(raw) ? notPlain : raw
}

const readLine = (text: string): Line | undefined | typeof notPlain => {
  if (!plainLine.test(text)) return notPlain
  const body = text.trimStart()
  if (body === "") return undefined
  const indent = text.length - body.length
  if (body === "-" || body.startsWith("- ")) {
    const value = body.slice(2)
    return value === "" ? notPlain : { indent, key: undefined, value }
  }
  const colon = body.indexOf(":")
  if (colon <= 0) return notPlain
  const key = body.slice(0, colon)
  if (!keyPattern.test(key) || oddKey.test(key)) return notPlain
  const rest = body.slice(colon + 1)
  if (rest === "") return { indent, key, value: undefined }
  return rest.startsWith(" ") && rest.trim() !== "" ? { indent, key, value: rest.trimStart() } : notPlain
}

/** The YAML text's value, when it is written in the plain subset; `notPlain` otherwise. */
export const parsePlainYaml = (text: string): Value | typeof notPlain => {
  const lines: Array<Line> = []
  for (const raw of text.split("\n")) {
    const line = readLine(raw)
    if (line === notPlain) return notPlain
    if (line) lines.push(line)
  }
  if (lines.length === 0 || lines[0]!.indent !== 0) return notPlain
  let at = 0

  const sequence = (indent: number): Value | typeof notPlain => {
    const items: Array<Value> = []
    while (at < lines.length && lines[at]!.indent === indent && lines[at]!.key === undefined) {
      const item = scalar(lines[at]!.value!)
      if (item === notPlain) return notPlain
      items.push(item)
      at++
    }
    return items
  }

  const mapping = (indent: number): Value | typeof notPlain => {
    const out: Record<string, Value> = {}
    while (at < lines.length && lines[at]!.indent === indent) {
      const { key, value } = lines[at]!
      if (key === undefined || Object.prototype.hasOwnProperty.call(out, key)) return notPlain
      at++
      const next = lines[at]
      let v: Value | typeof notPlain
      if (value !== undefined) {
        // a value continued on the next lines is a multi-line scalar
        if (next && next.indent > indent) return notPlain
        v = scalar(value)
      } else if (next && next.indent > indent) v = block(next.indent)
      else if (next && next.indent === indent && next.key === undefined) v = sequence(indent)
      else return notPlain // a null
      if (v === notPlain) return notPlain
      out[key] = v
    }
    return out
  }

  const block = (indent: number): Value | typeof notPlain => (lines[at]!.key === undefined ? sequence(indent) : mapping(indent))

  const value = block(0)
  return at === lines.length ? value : notPlain
}
