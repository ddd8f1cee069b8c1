/**
 * The kind of a refusal, from its path and reason, pure: a few fixed words where the reason is free text (it
 * names files, architectures, fingerprints). Metrics label refusals by kind, so that their label values stay a
 * small, known set whatever uploaders do; `status` shows both.
 */
import type { Refusal } from "../tree/Layout.js"

export const refusalKinds = [
  /** Names, folders, missing or doubled files, symlinks: what the tree's layout rules refuse. */
  "layout",
  /** The metadata tarball or its metadata.yaml, or a unified image tarball. */
  "metadata",
  /** SHA256SUMS: a file not listed, a sum that does not match, a bad line. */
  "checksum",
  /** image.yaml. */
  "image_yaml",
  /** The same image as another version. */
  "duplicate",
  /** Files that changed while they were read: tried again when they change. */
  "changing",
  /** A file or folder that could not be read. */
  "unreadable",
  /** A version whose entry would break images.json. */
  "catalog",
  "other"
] as const

export type RefusalKind = (typeof refusalKinds)[number]

const endsWithFile = (path: string, name: string) => path === name || path.endsWith(`/${name}`)

/** The rules in order: the first that holds names the kind. */
const rules: ReadonlyArray<readonly [RefusalKind, (r: Pick<Refusal, "path" | "reason">) => boolean]> = [
  ["duplicate", (r) => r.reason.startsWith("the same image as ")],
  ["changing", (r) => /changed while being hashed|kept changing/.test(r.reason)],
  ["checksum", (r) => endsWithFile(r.path, "SHA256SUMS") || r.reason.includes("SHA256SUMS")],
  ["image_yaml", (r) => endsWithFile(r.path, "image.yaml")],
  ["unreadable", (r) => /^cannot read|file vanished|\bE(ACCES|IO|PERM|ISDIR|NOTDIR)\b|permission denied/i.test(r.reason)],
  [
    "layout",
    (r) => /^(folder name|file name|unknown architecture folder|no metadata file|no rootfs file|two |empty file)|symlink|is not a regular file/.test(r.reason)
  ],
  ["catalog", (r) => r.reason.startsWith("would not be valid in images.json")],
  [
    "metadata",
    (r) => /metadata\.yaml|metadata tarball|tar archive|tar header|tarball|compressed|not valid \S+ data|rootfs\/|unified|larger than 1 MiB/.test(r.reason)
  ]
]

export const refusalKind = (r: Pick<Refusal, "path" | "reason">): RefusalKind => rules.find(([, holds]) => holds(r))?.[0] ?? "other"
