/**
 * The rules of the images tree, pure: `images/{os}/{release}/{arch}/{variant}/{version}/` is one version of
 * product `os:release:arch:variant`, and its files make a VersionPlan or a Refusal (a reason tied to a path).
 */
import { isKnownArchitecture, productArchitecture } from "../simplestreams/Architecture.js"
import { isMetadataFileName, isUnifiedFileName, type MetadataFtype, rootfsFtype, type RootfsFtype } from "../simplestreams/Ftype.js"
import type { ImageYaml } from "./ImageYaml.js"
import { sumsFileName } from "./Sha256Sums.js"


/** A reason a path is not published, logged once as a warning. Data, never an exception. */
export interface Refusal {
  readonly _tag: "Refusal"
  /** The refused file or folder, relative to the images folder. */
  readonly path: string
  readonly reason: string
}

export const refusal = (path: string, reason: string): Refusal => ({ _tag: "Refusal", path, reason })

export interface VersionRef {
  readonly os: string
  readonly release: string
  /** The folder's name, as uploaded. */
  readonly arch: string
  readonly variant: string
  readonly version: string
}

/** A real path is the root itself or below it (`/srv/www` is not below `/srv/w`). */
export const isWithin = (root: string, real: string, sep = "/"): boolean => real === root || real.startsWith(root + sep)

/** `os:release:arch:variant`, the key of the product in images.json. */
export const productKey = (ref: Omit<VersionRef, "version">): string =>
  `${ref.os}:${ref.release}:${ref.arch}:${ref.variant}`

/** The version folder relative to the images folder: `os/release/arch/variant/version`. */
export const versionDir = (ref: VersionRef): string => `${ref.os}/${ref.release}/${ref.arch}/${ref.variant}/${ref.version}`

const daysIn = (year: number, month: number): number =>
  month === 2 ? (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31

/** The name is a real calendar date, YYYYMMDD (from 1970), at its start. Asked of every version folder of every scan. */
export const startsWithDate = (name: string): boolean => {
  if (name.length < 8) return false
  for (let i = 0; i < 8; i++) {
    const c = name.charCodeAt(i)
    if (c < 48 || c > 57) return false
  }
  const [y, mo, d] = [Number(name.slice(0, 4)), Number(name.slice(4, 6)), Number(name.slice(6, 8))]
  return y >= 1970 && mo >= 1 && mo <= 12 && d >= 1 && d <= daysIn(y, mo)
}

/** What a folder name at the version level is. */
export type VersionFolderKind = "version" | "staging" | "other"

export const versionFolderKind = (name: string): VersionFolderKind =>
  name.startsWith(".") ? "staging" : startsWithDate(name) ? "version" : "other"

/**
 * Path segments end up verbatim in item paths that both clients join onto the remote URL; keep them to
 * characters that survive that unchanged (SIMPLESTREAMS.md §1.3).
 */
const safeSegment = /^[A-Za-z0-9_:.-]+$/

/** A metadata tarball or a rootfs by its name: the files of a version that are published. */
export const isImageFileName = (name: string): boolean =>
  isMetadataFileName(name) || rootfsFtype(name) !== undefined || isUnifiedFileName(name)

/** Checks the folders above the files of a version; the arch must be one the clients know. */
export const checkVersionRef = (ref: VersionRef): Refusal | undefined => {
  const dir = versionDir(ref)
  for (const segment of [ref.os, ref.release, ref.arch, ref.variant, ref.version]) {
    if (!safeSegment.test(segment)) {
      return refusal(dir, `folder name '${segment}' has characters other than A-Z a-z 0-9 _ : . -`)
    }
  }
  if (!isKnownArchitecture(ref.arch)) {
    return refusal(dir, `unknown architecture folder '${ref.arch}': LXD and Incus would silently drop it`)
  }
  return undefined
}

export interface FileEntry {
  readonly name: string
  readonly size: number
}

export type MetadataFile<F extends FileEntry = FileEntry> = F & { readonly name: MetadataFtype }
export type RootfsFile<F extends FileEntry = FileEntry> = F & { readonly ftype: RootfsFtype }

/** A whole version as found on disk, before hashing. */
export interface VersionPlan<F extends FileEntry = FileEntry> {
  readonly _tag: "VersionPlan"
  readonly ref: VersionRef
  /** The metadata tarballs present (`lxd.tar.xz`, `incus.tar.xz`), sorted by name. */
  readonly metadata: ReadonlyArray<MetadataFile<F>>
  /** The rootfs files present, sorted by name. */
  readonly rootfs: ReadonlyArray<RootfsFile<F>>
  /** A unified image (metadata.yaml and rootfs/ in one tarball): then `metadata` and `rootfs` are empty. */
  readonly unified?: F | undefined
  /** `SHA256SUMS`, when the uploader sent one: then every published file must match it. */
  readonly sums?: F | undefined
  /** `image.yaml`, read with every look at the folder (it is not hashed): names and requirements. */
  readonly image?: ImageYaml | undefined
}

const byName = (a: FileEntry, b: FileEntry) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)

/**
 * Decides from the regular files of a version folder what would be published. Any file that is neither a
 * metadata tarball nor a rootfs is ignored and never hashed.
 */
export const planVersion = <F extends FileEntry>(
  ref: VersionRef,
  files: ReadonlyArray<F>
): VersionPlan<F> | Refusal => {
  const dir = versionDir(ref)
  const refused = checkVersionRef(ref)
  if (refused) return refused
  // one pass over the files (this runs for every version of every scan: 10,000 at each restart)
  const metadata: Array<MetadataFile<F>> = []
  const rootfs: Array<RootfsFile<F>> = []
  let sums: F | undefined
  for (const f of files) {
    if (isMetadataFileName(f.name)) metadata.push(f as MetadataFile<F>)
    else if (f.name === sumsFileName) sums ??= f
    else {
      const ftype = rootfsFtype(f.name)
      if (ftype !== undefined) rootfs.push({ ...f, ftype })
    }
  }
  if (metadata.length > 1) metadata.sort(byName)
  if (rootfs.length > 1) rootfs.sort(byName)
  if (metadata.length === 0 && rootfs.length === 0) {
    // split files win: a version never mixes unified and split items (LXD 5.0 mis-read such versions)
    const unified = files.filter((f) => isUnifiedFileName(f.name))
    if (unified.length > 1) {
      return refusal(dir, `two unified image tarballs (${unified.map((f) => f.name).sort().join(", ")}): one image per version`)
    }
    const [only] = unified
    if (only !== undefined) {
      if (!safeSegment.test(only.name)) return refusal(`${dir}/${only.name}`, `file name has characters other than A-Z a-z 0-9 _ : . -`)
      if (only.size === 0) return refusal(`${dir}/${only.name}`, "empty file")
      return { _tag: "VersionPlan", ref, metadata, rootfs, unified: only, ...(sums ? { sums } : {}) }
    }
  }
  if (metadata.length === 0) return refusal(dir, "no metadata file (lxd.tar.xz or incus.tar.xz) and no unified image tarball")
  if (rootfs.length === 0) {
    return refusal(dir, "no rootfs file (*.squashfs, rootfs.tar.xz, root.tar.xz, *.qcow2 or disk-kvm.img)")
  }
  for (const f of [...metadata, ...rootfs]) {
    // the name goes verbatim into the item path: one clients would mangle must not reach the catalog
    if (!safeSegment.test(f.name)) return refusal(`${dir}/${f.name}`, `file name has characters other than A-Z a-z 0-9 _ : . -`)
    if (f.size === 0) return refusal(`${dir}/${f.name}`, "empty file")
  }
  for (const f of rootfs) {
    const twin = rootfs.find((o) => o !== f && o.ftype === f.ftype)
    if (twin) {
      return refusal(dir, `two rootfs files of type ${f.ftype} (${f.name}, ${twin.name}): one per type per version`)
    }
  }
  return { _tag: "VersionPlan", ref, metadata, rootfs, ...(sums ? { sums } : {}) }
}

/** Every file of a plan whose bytes go into what is published: the image files, and the sums that vouch for them. */
export const planFiles = <F extends FileEntry>(plan: VersionPlan<F>): ReadonlyArray<F> => [
  ...plan.metadata,
  ...plan.rootfs,
  ...(plan.unified ? [plan.unified] : []),
  ...(plan.sums ? [plan.sums] : [])
]

/** The product `arch` to write: the Debian-style name for the folder's architecture (`x86_64` → `amd64`). */
export const productArch = (ref: VersionRef): string => productArchitecture(ref.arch) ?? ref.arch
