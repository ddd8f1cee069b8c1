/**
 * What a metadata.yaml must hold, checked the way the LXD daemon checks it (`getImageMetadata`): a known
 * `architecture` and a non-zero `creation_date`. Pure: YAML text in, metadata or a reason out.
 */
import { parse } from "yaml"
import { isKnownArchitecture } from "../simplestreams/Architecture.js"
import { notPlain, parsePlainYaml } from "./PlainYaml.js"

export interface ImageMetadata {
  readonly architecture: string
  /** Unix seconds. */
  readonly creationDate: number
  /** `properties:` as strings; YAML numbers such as `release: 12` become `"12"`. */
  readonly properties: Readonly<Record<string, string>>
}

export const parseMetadataYaml = (yamlText: string): ImageMetadata | { readonly reason: string } => {
  // most metadata.yaml files are plain YAML, read at once; the rest goes through the full parser
  let doc: unknown = parsePlainYaml(yamlText)
  if (doc === notPlain) {
    try {
      doc = parse(yamlText)
    } catch (e) {
      return { reason: `metadata.yaml is not valid YAML: ${(e as Error).message.split("\n")[0]}` }
    }
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    return { reason: "metadata.yaml is not a YAML mapping" }
  }
  const m = doc as Record<string, unknown>
  const architecture = scalar(m["architecture"])
  if (architecture === undefined || architecture === "") return { reason: "metadata.yaml has no architecture" }
  if (!isKnownArchitecture(architecture)) {
    return { reason: `metadata.yaml has an unknown architecture '${architecture}'` }
  }
  const creation = m["creation_date"]
  if (typeof creation !== "number" || !Number.isInteger(creation) || creation <= 0) {
    return { reason: "metadata.yaml has no creation_date (Unix seconds, non-zero)" }
  }
  if (!Number.isSafeInteger(creation)) return { reason: `metadata.yaml has a creation_date out of range (${creation}): Unix seconds` }
  const properties: Record<string, string> = {}
  const props = m["properties"]
  if (props !== null && typeof props === "object" && !Array.isArray(props)) {
    for (const [k, v] of Object.entries(props as Record<string, unknown>)) {
      const s = scalar(v)
      if (s !== undefined) properties[k] = s
    }
  }
  return { architecture, creationDate: creation, properties }
}

const scalar = (v: unknown): string | undefined =>
  typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : undefined

/** Compression by magic bytes, as the daemon detects it. */
export type Compression = "xz" | "gzip" | "bzip2" | "zstd" | "none"

export const detectCompression = (head: Uint8Array): Compression => {
  const starts = (...bytes: number[]) => bytes.every((b, i) => head[i] === b)
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return "xz"
  if (starts(0x1f, 0x8b)) return "gzip"
  if (starts(0x42, 0x5a, 0x68)) return "bzip2"
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return "zstd"
  return "none"
}
