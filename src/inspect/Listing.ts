/**
 * What `list` shows, pure: the images a published catalog offers, one row per image (a fingerprint a client
 * can launch), and the versions of the tree that are not published with why. Rows are plain records of
 * strings, numbers and string lists, so one set of formatters (table, csv, yaml, json) serves both lists.
 */
import type { Images } from "../simplestreams/Streams.js"
import { type VersionImage, versionImages } from "../simplestreams/VersionImages.js"
import type { Remembered } from "../publish/Publisher.js"
import { sameIdentities, justIdentity } from "../tree/Identity.js"
import type { FoundPlan } from "../tree/Scanner.js"
import { type Refusal, versionDir } from "../tree/Layout.js"

/** The version of the JSON (and YAML) shape of `list`: raised only when a field changes meaning or goes away. */
export const listFormatVersion = 1

export type Cell = string | number | ReadonlyArray<string>
export type Row = Readonly<Record<string, Cell>>

export interface ImageRow extends Row, VersionImage {
  readonly product: string
  readonly os: string
  readonly release: string
  readonly arch: string
  readonly variant: string
  readonly version: string
  readonly aliases: ReadonlyArray<string>
}

/**
 * Every image of the catalog (split and unified, see versionImages), one row each. Sorted by product,
 * version, then ftype.
 */
export const imageRows = (images: Images): ReadonlyArray<ImageRow> => {
  const rows: Array<ImageRow> = []
  for (const [product, p] of Object.entries(images.products)) {
    const aliases = p.aliases.split(",").filter((a) => a !== "")
    for (const [version, v] of Object.entries(p.versions)) {
      for (const image of versionImages(v.items)) {
        rows.push({ product, os: p.os, release: p.release, arch: p.arch, variant: p.variant, version, ...image, aliases })
      }
    }
  }
  const order = (r: ImageRow) => `${r.product}\u0000${r.version}\u0000${r.ftype}\u0000${r.fingerprint}`
  return rows.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0))
}

export interface RefusedRow extends Row {
  /** Relative to the images folder. */
  readonly path: string
  readonly reason: string
  /**
   * Where the reason comes from: `scan` (the layout rules), `journal` (what `watch` found reading these very
   * files), `read` (`list` read and hashed the version itself, as `update` would).
   */
  readonly source: "scan" | "journal" | "read"
}

export interface RefusedInput {
  readonly plans: ReadonlyArray<FoundPlan>
  readonly refusals: ReadonlyArray<Refusal>
  /** The version folders the catalog lists. */
  readonly published: ReadonlySet<string>
  readonly memory: ReadonlyMap<string, Remembered>
  /** What reading a version gave (by version folder): its refusal, or undefined when it is fit to publish. */
  readonly read?: ReadonlyMap<string, Refusal | undefined>
}

/** What `watch` remembers of a version folder, if it is about the files there now. */
const rememberedNow = (plan: FoundPlan, memory: ReadonlyMap<string, Remembered>): Remembered | undefined => {
  const known = memory.get(versionDir(plan.ref))
  return known !== undefined && sameIdentities(known.files, [...plan.metadata, ...plan.rootfs].map(justIdentity)) ? known : undefined
}

/**
 * The complete version folders the catalog does not list and `watch` has no word on: they must be read (their
 * metadata checked, their files hashed) to know why. Usually few: the refused and the newly uploaded.
 */
export const unexplainedPlans = (input: Omit<RefusedInput, "read" | "refusals">): ReadonlyArray<FoundPlan> =>
  input.plans.filter((p) => !input.published.has(versionDir(p.ref)) && rememberedNow(p, input.memory) === undefined)

/**
 * The versions of the tree the catalog does not list, and why. The scan gives the reasons the layout rules
 * know (names, missing files); a complete version is refused only once its files are read, which `watch`
 * remembers in its journal, keyed by the files' identities (so a reason counts only while the files are the
 * same files), and which `list` does itself for the rest (`read`).
 */
export const refusedRows = (input: RefusedInput): ReadonlyArray<RefusedRow> => {
  const rows: Array<RefusedRow> = input.refusals.map((r) => ({ path: r.path, reason: r.reason, source: "scan" }))
  const unlisted = "fit to publish, but not listed: the same image as a published version, or not committed yet (is `watch` running?)"
  for (const plan of input.plans) {
    const dir = versionDir(plan.ref)
    if (input.published.has(dir)) continue
    const known = rememberedNow(plan, input.memory)
    if (known?._tag === "Refused") rows.push({ path: known.refusal.path, reason: known.refusal.reason, source: "journal" })
    else if (known !== undefined) rows.push({ path: dir, reason: unlisted, source: "journal" })
    else if (input.read?.has(dir)) {
      const refused = input.read.get(dir)
      rows.push(refused ? { path: refused.path, reason: refused.reason, source: "read" } : { path: dir, reason: unlisted, source: "read" })
    } else rows.push({ path: dir, reason: "not published; not read yet", source: "scan" })
  }
  return rows.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}

export type ListFormat = "table" | "json" | "csv" | "yaml"
export const listFormats: ReadonlyArray<ListFormat> = ["table", "json", "csv", "yaml"]

/** A cell as one line of text: lists comma-joined. */
const plain = (cell: Cell): string => (typeof cell === "string" ? cell : typeof cell === "number" ? String(cell) : cell.join(","))

/** Aligned columns under an upper-case header; the last column is not padded. */
export const formatTable = (columns: ReadonlyArray<string>, rows: ReadonlyArray<Row>): string => {
  const lines = [columns.map((c) => c.toUpperCase()), ...rows.map((r) => columns.map((c) => plain(r[c] ?? "")))]
  const widths = columns.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)))
  return lines.map((l) => l.map((cell, i) => (i === l.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ").trimEnd()).join("\n") + "\n"
}

const csvField = (text: string) => (/[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text)

/** RFC 4180: a header line, CRLF line ends, fields with a comma, quote or line break quoted; lists comma-joined. */
export const formatCsv = (columns: ReadonlyArray<string>, rows: ReadonlyArray<Row>): string =>
  [columns, ...rows.map((r) => columns.map((c) => plain(r[c] ?? "")))].map((l) => l.map(csvField).join(",")).join("\r\n") + "\r\n"

/** `{ "format_version": 1, "<key>": [rows] }`, keys in column order. */
export const formatJson = (key: string, columns: ReadonlyArray<string>, rows: ReadonlyArray<Row>): string =>
  `${JSON.stringify({ format_version: listFormatVersion, [key]: rows.map((r) => Object.fromEntries(columns.map((c) => [c, r[c] ?? ""]))) }, null, 2)}\n`

/** The same document as the JSON, in YAML: strings double-quoted (JSON strings are YAML scalars), so nothing is re-typed. */
export const formatYaml = (key: string, columns: ReadonlyArray<string>, rows: ReadonlyArray<Row>): string => {
  const scalar = (v: string | number) => (typeof v === "number" ? String(v) : JSON.stringify(v))
  const lines = [`format_version: ${listFormatVersion}`, rows.length === 0 ? `${key}: []` : `${key}:`]
  for (const row of rows) {
    columns.forEach((c, i) => {
      const lead = i === 0 ? "  - " : "    "
      const v = row[c] ?? ""
      if (typeof v === "string" || typeof v === "number") lines.push(`${lead}${c}: ${scalar(v)}`)
      else if (v.length === 0) lines.push(`${lead}${c}: []`)
      else lines.push(`${lead}${c}:`, ...v.map((item) => `      - ${scalar(item)}`))
    })
  }
  return `${lines.join("\n")}\n`
}

export const imageColumns = ["product", "version", "type", "ftype", "fingerprint", "size", "aliases"] as const
/** JSON and YAML carry every field; the table and CSV the ones the issue asks for, plus `clients`. */
export const imageFields = ["product", "os", "release", "arch", "variant", "version", "type", "ftype", "fingerprint", "size", "aliases", "clients"] as const
export const refusedColumns = ["path", "reason", "source"] as const

/** One list in one format. */
export const formatRows = (format: ListFormat, key: "images" | "refused", rows: ReadonlyArray<Row>): string => {
  const wide = key === "images" ? imageFields : refusedColumns
  const narrow = key === "images" ? [...imageColumns, "clients"] : refusedColumns
  switch (format) {
    case "table":
      return formatTable(narrow, rows)
    case "csv":
      return formatCsv(narrow, rows)
    case "json":
      return formatJson(key, wide, rows)
    case "yaml":
      return formatYaml(key, wide, rows)
  }
}
