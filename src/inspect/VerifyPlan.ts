/**
 * What `verify` checks, pure: from a parsed catalog, every file it names with the sha256 and size each item
 * gives, every combined fingerprint a metadata item gives (sha256 of its file then the rootfs file's), and the
 * hash jobs that compute them reading each file once; then, from what was read, one line per problem.
 */
import { combinedKeys, isMetadataFileName, type RootfsFtype } from "../simplestreams/Ftype.js"
import type { Images, Item } from "../simplestreams/Streams.js"

/** One product version, as problems name it: `os:release:arch:variant 20240101_10:00`. */
export type VersionId = string

export interface Expectation {
  readonly version: VersionId
  /** The item's key in the version (`lxd.tar.xz`, `rootfs.squashfs`). */
  readonly item: string
  readonly sha256: string
  readonly size: number
}

export interface FileCheck {
  /** As the catalog writes it: relative to the web root (the folder that holds `streams/`). */
  readonly path: string
  readonly expected: ReadonlyArray<Expectation>
}

export interface CombinedCheck {
  readonly version: VersionId
  readonly item: string
  readonly key: string
  readonly metadataPath: string
  readonly rootfsPath: string
  readonly expected: string
}

export interface Problem {
  readonly version: VersionId
  readonly line: string
}

export interface Checks {
  readonly files: ReadonlyArray<FileCheck>
  readonly combined: ReadonlyArray<CombinedCheck>
  /** Found in the catalog alone, without reading a file. */
  readonly problems: ReadonlyArray<Problem>
  readonly versions: number
}

const rootfsFtypes: ReadonlyArray<string> = ["squashfs", "root.tar.xz", "disk-kvm.img"]
const allCombinedKeys = [...new Set(rootfsFtypes.flatMap((f) => combinedKeys(f as RootfsFtype)))]

/** A path that climbs out of the web root would make the server read (and clients fetch) what it must not. */
const leavesRoot = (path: string) => path.split("/").some((s) => s === "..")

/**
 * The checks of a catalog, or of the versions of it named in `only` (to look again at those alone). Each
 * combined key on a metadata item must have the rootfs item of its type in the version, and each rootfs item
 * its combined key on every metadata item, or that client has no fingerprint for it.
 */
export const checksOf = (images: Images, only?: ReadonlySet<VersionId>): Checks => {
  const files = new Map<string, Array<Expectation>>()
  const combined: Array<CombinedCheck> = []
  const problems: Array<Problem> = []
  let versions = 0
  for (const [product, p] of Object.entries(images.products)) {
    for (const [key, v] of Object.entries(p.versions)) {
      const version = `${product} ${key}`
      if (only !== undefined && !only.has(version)) continue
      versions++
      const items = Object.entries(v.items)
      for (const [name, item] of items) {
        if (leavesRoot(item.path)) {
          problems.push({ version, line: `${item.path}: leaves the web root (listed by ${version} ${name})` })
          continue
        }
        files.set(item.path, [...(files.get(item.path) ?? []), { version, item: name, sha256: item.sha256, size: item.size }])
      }
      const rootfsOf = (ftype: string) => items.find(([, i]) => i.ftype === ftype)
      for (const [name, meta] of items.filter(([, i]) => isMetadataFileName(i.ftype))) {
        const given = meta as Item & Record<string, unknown>
        for (const key of allCombinedKeys) {
          const expected = given[key]
          if (typeof expected !== "string") continue
          const ftype = rootfsFtypes.find((f) => combinedKeys(f as RootfsFtype).includes(key))!
          const rootfs = rootfsOf(ftype)
          if (rootfs === undefined) {
            problems.push({ version, line: `${meta.path}: ${key} is set on ${version} ${name}, but the version has no ${ftype} item` })
          } else if (!leavesRoot(meta.path) && !leavesRoot(rootfs[1].path)) {
            combined.push({ version, item: name, key, metadataPath: meta.path, rootfsPath: rootfs[1].path, expected })
          }
        }
        for (const [rootfsName, rootfs] of items.filter(([, i]) => rootfsFtypes.includes(i.ftype))) {
          const keys = combinedKeys(rootfs.ftype as RootfsFtype)
          if (!keys.some((k) => typeof given[k] === "string")) {
            problems.push({ version, line: `${meta.path}: ${version} ${name} has no ${keys[0]} for ${rootfsName}: that client cannot use the image` })
          }
        }
      }
    }
  }
  return { files: [...files].map(([path, expected]) => ({ path, expected })), combined, problems, versions }
}

/** What `index.json` must say: exactly the products of images.json, since clients read only those it lists. */
export const indexProblems = (indexed: ReadonlyArray<string> | undefined, images: Images): ReadonlyArray<Problem> => {
  if (indexed === undefined) return [{ version: "", line: "index.json: missing or not an index: clients find no catalog" }]
  const keys = Object.keys(images.products)
  const listed = new Set(indexed)
  return [
    ...indexed.filter((k) => !(k in images.products)).map((k) => ({ version: "", line: `index.json: lists ${k}, which images.json lacks` })),
    ...keys.filter((k) => !listed.has(k)).map((k) => ({ version: "", line: `index.json: does not list ${k}: clients never see it` }))
  ]
}

/** One read of a file: its sha256 and every combined hash behind the metadata files (`heads`) it goes with. */
export interface Job {
  readonly file: string
  readonly heads: ReadonlyArray<string>
}

/**
 * The fewest reads: each rootfs once, behind the metadata files it is combined with (which also gives their
 * own hashes); then each file no job reads yet, alone.
 */
export const jobsOf = (checks: Checks): ReadonlyArray<Job> => {
  const heads = new Map<string, Array<string>>()
  for (const c of checks.combined) {
    const list = heads.get(c.rootfsPath) ?? []
    if (!list.includes(c.metadataPath)) list.push(c.metadataPath)
    heads.set(c.rootfsPath, list)
  }
  const jobs: Array<Job> = [...heads].map(([file, h]) => ({ file, heads: h }))
  const read = new Set(jobs.flatMap((j) => [j.file, ...j.heads]))
  for (const f of checks.files) if (!read.has(f.path)) jobs.push({ file: f.path, heads: [] })
  return jobs
}

/** What reading a file gave. */
export type FileResult =
  | { readonly _tag: "Read"; readonly sha256: string; readonly size: number }
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Unreadable"; readonly reason: string }

export interface Results {
  readonly files: ReadonlyMap<string, FileResult>
  /** By `metadataPath\0rootfsPath`. */
  readonly combined: ReadonlyMap<string, string>
}

export const combinedId = (metadataPath: string, rootfsPath: string) => `${metadataPath}\u0000${rootfsPath}`

/** One line per problem, in catalog order: the file (or pair of files), what is wrong, and who lists it. */
export const judge = (checks: Checks, results: Results): ReadonlyArray<Problem> => {
  const problems: Array<Problem> = [...checks.problems]
  for (const f of checks.files) {
    const got = results.files.get(f.path) ?? { _tag: "Unreadable", reason: "not read" }
    for (const e of f.expected) {
      const who = `(listed by ${e.version} ${e.item})`
      if (got._tag === "Missing") problems.push({ version: e.version, line: `${f.path}: missing ${who}` })
      else if (got._tag === "Unreadable") problems.push({ version: e.version, line: `${f.path}: cannot be read: ${got.reason} ${who}` })
      else {
        if (got.size !== e.size) problems.push({ version: e.version, line: `${f.path}: size is ${got.size} bytes, the catalog says ${e.size} ${who}` })
        if (got.sha256 !== e.sha256) problems.push({ version: e.version, line: `${f.path}: sha256 is ${got.sha256}, the catalog says ${e.sha256} ${who}` })
      }
    }
  }
  for (const c of checks.combined) {
    const got = results.combined.get(combinedId(c.metadataPath, c.rootfsPath))
    // a file that could not be read is reported above, once
    if (got === undefined || got === c.expected) continue
    problems.push({
      version: c.version,
      line: `${c.metadataPath} + ${c.rootfsPath}: combined fingerprint is ${got}, ${c.key} says ${c.expected} (listed by ${c.version} ${c.item})`
    })
  }
  return problems
}
