/**
 * The plain-YAML reader against the full parser: for every text it accepts, the same value; the rest it leaves
 * to the full parser. Random documents from a grammar of what metadata.yaml files hold, and the odd cases.
 */
import { describe, expect, it } from "@effect/vitest"
import { parse } from "yaml"
import { notPlain, parsePlainYaml } from "../../src/tree/PlainYaml.js"

const builderMetadata = `architecture: x86_64
creation_date: 1704103200
expiry_date: 1706695200
properties:
  architecture: amd64
  description: Debian bookworm amd64 (20240101_05:24)
  name: debian-bookworm-amd64-default-20240101_05:24
  os: debian
  release: bookworm
  serial: "20240101_05:24"
  variant: default
templates:
  /etc/hostname:
    when:
    - create
    - copy
    create_only: false
    template: hostname.tpl
    properties: {}
  /etc/hosts:
    when:
      - create
    template: hosts.tpl
    properties: {}
`

/** A small deterministic random source, so that a failure comes back the same. */
const random = (seed: number) => () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff
  return seed / 0x7fffffff
}

const scalars = [
  "x86_64", "amd64", "Debian bookworm amd64 (20240101_05:24)", "20240101_05:24", "1704103200", "012", "0", "12",
  "1.5", "1.", ".5", "1e3", "0x1F", "0o17", "+12", "-3", "true", "True", "FALSE", "yes", "No", "on", "null", "~",
  "Null", ".inf", "-.Inf", ".NaN", "a: b", "a:b", "a :b", "a #b", "a#b", "'q'", "\"q\"", "\"a: b\"", "'it''s'", "\"a\\tb\"",
  "{}", "[]", "{a: 1}", "[1, 2]", "&anchor x", "*alias", "!tag x", "|", ">", "-x", "- x", "?x", ":x", "x:", "x ",
  "a,b", "100%", "@x", "`x`", "hostname.tpl", "/etc/hostname", "Fedora 40 (cloud)", "__proto__", "1_000", "12345678901234567"
]
const keys = ["architecture", "creation_date", "properties", "os", "release", "name", "/etc/hosts", "when", "true", "Null", "1st", "a b", "__proto__", "x-y", "a.b"]

const document = (next: () => number, depth = 0, indent = ""): string => {
  const pick = <A>(xs: ReadonlyArray<A>) => xs[Math.floor(next() * xs.length)]!
  const lines: Array<string> = []
  const used = new Set<string>()
  for (let i = 0, n = 1 + Math.floor(next() * 4); i < n; i++) {
    let key = pick(keys)
    if (used.has(key) && next() < 0.8) continue // a duplicate now and then
    used.add(key)
    const kind = depth >= 2 ? 0 : Math.floor(next() * 4)
    if (kind === 0) lines.push(`${indent}${key}: ${pick(scalars)}`)
    else if (kind === 1) lines.push(`${indent}${key}:`, document(next, depth + 1, `${indent}${pick(["  ", "    ", " "])}`))
    else {
      const at = kind === 2 ? indent : `${indent}  `
      lines.push(`${indent}${key}:`, ...Array.from({ length: 1 + Math.floor(next() * 3) }, () => `${at}- ${pick(scalars)}`))
    }
    if (next() < 0.05) lines.push("")
    if (next() < 0.03) lines.push(`${indent}   continued`)
  }
  return lines.join("\n")
}

describe("parsePlainYaml", () => {
  it("reads what an image builder writes, as the full parser does", () => {
    expect(parsePlainYaml(builderMetadata)).toEqual(parse(builderMetadata))
    expect(parsePlainYaml("architecture: x86_64\ncreation_date: 1704103200\nproperties:\n  description: bench image\n")).toEqual({
      architecture: "x86_64", creation_date: 1704103200, properties: { description: "bench image" }
    })
  })

  it("leaves what it does not read exactly to the full parser", () => {
    for (const text of [
      "a: 1 # comment", "a: &x 1", "a: !!str 1", "a: |\n  b", "a: >\n  b", "a: b\n  c", "a:\nb: 1", "a: 1\na: 2", "a: 1.5",
      "a: yes!", "a: null", "a: ~", "a: \"x\\ny\"", "a: [1, 2]", "--- \na: 1", "a:\tb", "a: b\r\nc: d", "a: é", "  a: 1", "a:b",
      "", "\n\n", "true: 1", "a: -1", "a: 0x10", "a: 12345678901234567"
    ]) expect([text, parsePlainYaml(text)]).toEqual([text, notPlain])
  })

  it("gives the full parser's value for every random document it accepts", () => {
    const next = random(42)
    let accepted = 0
    for (let i = 0; i < 20000; i++) {
      const text = document(next)
      const fast = parsePlainYaml(text)
      if (fast === notPlain) continue
      accepted++
      let full: unknown
      try {
        full = parse(text)
      } catch (e) {
        throw new Error(`accepted a text the full parser refuses (${(e as Error).message.split("\n")[0]}):\n${text}`)
      }
      expect([text, fast]).toEqual([text, full])
    }
    // the grammar makes plain documents often enough for the comparison to mean something
    expect(accepted).toBeGreaterThan(500)
  })
})
