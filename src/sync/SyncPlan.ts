/**
 * What a sync copies, pure: the upstream catalog's products and versions become version folders of the images
 * tree (`os/release/arch/variant/version`), each with the files to fetch (by local name, with the URL, sha256 and
 * size upstream gives) and the images they make (their fingerprints, to check before anything lands). Then,
 * against the local catalog and what is on disk, what is still missing.
 *
 * Upstream items for LXD only (`lxd.tar.xz`, `lxd_combined.tar.gz`) and for Incus only (`incus.tar.xz`,
 * `incus_combined.tar.gz`) are both read: a metadata file becomes `lxd.tar.xz` or `incus.tar.xz` here, and the
 * local catalog (compat `both`) offers it to both clients. When the two clients get different metadata files
 * upstream, both are kept, each under its own name, and each client sees the fingerprint it saw upstream.
 */
import { stringify } from "yaml"
import { productArchitecture, sameArchitecture } from "../simplestreams/Architecture.js"
import { productAliases } from "../simplestreams/Aliases.js"
import { combinedKeys, instanceType, type MetadataFtype, type RootfsFtype } from "../simplestreams/Ftype.js"
import type { Images } from "../simplestreams/Streams.js"
import { aliasPattern } from "../tree/ImageYaml.js"
import { startsWithDate, type VersionRef, versionDir } from "../tree/Layout.js"
import { productMatches, type SyncFilters, typeMatches } from "./SyncFilter.js"
import { resolveUpstream, type UpstreamCatalog, type UpstreamItem, type UpstreamProduct } from "./Upstream.js"

export interface PlannedFile {
  /** Its name in the version folder. */
  readonly name: string
  readonly url: string
  readonly sha256: string
  readonly size: number
}

export type InstanceType = "container" | "virtual-machine"

export interface PlannedImage {
  readonly fingerprint: string
  readonly type: InstanceType
  /** Local names: the metadata tarball, then the rootfs; or the unified tarball alone. */
  readonly files: readonly [string] | readonly [string, string]
}

export interface PlannedVersion {
  /** The upstream product key and version key. */
  readonly product: string
  readonly version: string
  readonly ref: VersionRef
  readonly files: ReadonlyArray<PlannedFile>
  readonly images: ReadonlyArray<PlannedImage>
  /** `image.yaml` for the version folder: upstream's aliases, names and requirements. */
  readonly imageYaml: string | undefined
}

/** Upstream data not copied, and why: said once, never a failure (the clients skip most of it too). */
export interface Skipped {
  readonly what: string
  readonly reason: string
}

export interface SyncPlan {
  readonly versions: ReadonlyArray<PlannedVersion>
  readonly skipped: ReadonlyArray<Skipped>
  /** Versions left out by the filters (or with no image of the type asked for). */
  readonly filteredOut: number
  /** Versions older than the newest `keep` of their product. */
  readonly beyondKeep: number
  /** Versions withdrawn here before (by prune, remove or retention), which a sync never brings back. */
  readonly withdrawn: number
}

export interface PlanOptions {
  /** The remote URL item paths are resolved against. */
  readonly remote: string
  readonly filters: SyncFilters
  /** The newest N versions of each product (by version name); all when undefined. */
  readonly keep?: number | undefined
  /** Version folders (relative to the images folder) withdrawn here once. */
  readonly withdrawn: ReadonlySet<string>
}

/** The local name of a rootfs of each type: the names the tree's rules read (SIMPLESTREAMS.md §5). */
export const rootfsName: Readonly<Record<RootfsFtype, string>> = { squashfs: "rootfs.squashfs", "root.tar.xz": "rootfs.tar.xz", "disk-kvm.img": "disk.qcow2" }

/** A unified image, whatever its compression (the tree reads it by its first bytes). */
export const unifiedLocalName = "image.tar.gz"

const metadataFtypes: ReadonlyArray<string> = ["lxd.tar.xz", "incus.tar.xz"]
const rootfsFtypes: ReadonlyArray<string> = ["squashfs", "root.tar.xz", "disk-kvm.img"]
const unifiedFtypes: ReadonlyArray<string> = ["incus_combined.tar.gz", "lxd_combined.tar.gz"]
const legacyVmFtypes: ReadonlyArray<string> = ["disk1.img", "uefi1.img"]

const isSha256 = (s: string | undefined): s is string => s !== undefined && /^[0-9a-f]{64}$/.test(s)

/** An item the clients can download: a path, an exact sha256 and a size. */
interface UsableItem extends UpstreamItem {
  readonly key: string
  readonly ftype: string
  readonly path: string
  readonly sha256: string
  readonly size: number
}

const usable = (key: string, item: UpstreamItem): item is UsableItem =>
  key !== "" && item.ftype !== undefined && (item.path ?? "") !== "" && isSha256(item.sha256) && item.size !== undefined && item.size > 0

/** A folder name of the tree: kept when it is one already, else its runs of other characters become `-`. */
const folderName = (name: string): string | undefined => {
  if (/^[A-Za-z0-9_.-]+$/.test(name)) return name
  const slug = name.replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^-+|-+$/g, "")
  return slug === "" ? undefined : slug
}

/**
 * The os folder. A product key shaped like a tree's (`os:release:arch:variant`, ours and lxd-imagebuilder's;
 * `os:release:variant:arch`, incus-simplestreams') starts with the folder name, which the product's `os` may not
 * be (`distro_name` in image.yaml says "Debian GNU/Linux" for the folder `debian`); otherwise the `os`,
 * lower-cased, or a slug of it.
 */
const osFolder = (key: string, product: UpstreamProduct): string | undefined => {
  const clean = (s: string) => (/^[a-z0-9_.-]+$/.test(s) ? s : undefined)
  const parts = key.split(":")
  const treeShaped = parts.length === 4 && parts.includes(product.release ?? "") && parts.some((p) => sameArchitecture(p, product.arch ?? ""))
  return (treeShaped ? clean(parts[0]!.toLowerCase()) : undefined) ?? clean((product.os ?? "").toLowerCase()) ?? folderName((product.os ?? "").toLowerCase())
}

const sorted = <T>(entries: ReadonlyArray<readonly [string, T]>) => [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))

/** The metadata item's fingerprint for a rootfs item, if it gives one (the keys the clients read, §5). */
const fingerprintFor = (meta: UsableItem, rootfs: RootfsFtype): string | undefined =>
  combinedKeys(rootfs)
    .map((k) => (meta as unknown as Record<string, string | undefined>)[k])
    .find(isSha256)

/** `image.yaml` for a synced version: what makes the local product read as upstream's does. */
export const imageYamlFor = (product: UpstreamProduct, ref: VersionRef): string | undefined => {
  const own = new Set(productAliases(ref.os, ref.release, ref.variant))
  const aliases = [
    ...new Set(
      (product.aliases ?? "")
        .split(",")
        .map((a) => a.trim())
        .filter((a) => aliasPattern.test(a) && !own.has(a.toLowerCase()))
    )
  ]
  const requirements = [product.requirements, product.lxd_requirements].find((r) => r !== undefined && Object.keys(r).length > 0)
  const doc: Record<string, unknown> = {
    ...(aliases.length > 0 ? { aliases } : {}),
    ...((product.os ?? "") !== "" ? { distro_name: product.os } : {}),
    ...((product.release_title ?? "") !== "" && product.release_title !== ref.release ? { release_title: product.release_title } : {}),
    ...(requirements ? { requirements } : {})
  }
  return Object.keys(doc).length === 0 ? undefined : stringify(doc)
}

/** One upstream version: its images (of the types asked for) and files, or why it is not copied. */
const planVersion = (
  productKey: string,
  product: UpstreamProduct,
  ref: VersionRef,
  items: ReadonlyArray<readonly [string, UpstreamItem]>,
  options: PlanOptions,
  skip: (what: string, reason: string) => void
): PlannedVersion | "filtered" | undefined => {
  const what = `${productKey} ${ref.version}`
  const ok = items.flatMap(([key, item]) => (usable(key, item) ? [{ ...item, key } as UsableItem] : []))
  const metas = ok.filter((i) => metadataFtypes.includes(i.ftype))
  const roots: Array<UsableItem> = []
  for (const item of ok.filter((i) => rootfsFtypes.includes(i.ftype))) {
    const twin = roots.find((r) => r.ftype === item.ftype)
    if (twin === undefined) roots.push(item)
    else if (twin.sha256 !== item.sha256) skip(`${what} ${item.key}`, `a second ${item.ftype} item (${twin.key} is copied): one per type per version here`)
  }
  for (const legacy of ok.filter((i) => legacyVmFtypes.includes(i.ftype))) skip(`${what} ${legacy.key}`, `${legacy.ftype} (a legacy VM disk) has no place in this tree`)

  // split images: each rootfs with each metadata item that names its fingerprint
  const split: Array<{ fingerprint: string; type: InstanceType; meta: UsableItem; root: UsableItem }> = []
  for (const root of roots) {
    for (const meta of metas) {
      const fingerprint = fingerprintFor(meta, root.ftype as RootfsFtype)
      if (fingerprint !== undefined && !split.some((s) => s.fingerprint === fingerprint)) {
        split.push({ fingerprint, type: instanceType(root.ftype as RootfsFtype), meta, root })
      }
    }
  }
  const files = new Map<string, PlannedFile>()
  const fileOf = (name: string, item: UsableItem) => {
    files.set(name, { name, url: resolveUpstream(options.remote, item.path), sha256: item.sha256, size: item.size })
    return name
  }
  const images: Array<PlannedImage> = []
  if (split.length > 0) {
    const wanted = split.filter((s) => typeMatches(options.filters, s.type))
    // one file per metadata file: under the name of a client that reads it, each client's own when they differ
    const metaFiles = [...new Set(wanted.map((s) => s.meta.sha256))]
    const metaName = (meta: UsableItem): MetadataFtype => {
      if (metaFiles.length === 1) return metas.some((m) => m.sha256 === meta.sha256 && m.ftype === "lxd.tar.xz") ? "lxd.tar.xz" : "incus.tar.xz"
      return meta.ftype as MetadataFtype
    }
    for (const s of wanted) {
      const name = metaName(s.meta)
      const taken = files.get(name)
      if (taken !== undefined && taken.sha256 !== s.meta.sha256) {
        skip(`${what} ${s.meta.key}`, `a second ${s.meta.ftype} metadata file: one per client per version here`)
        continue
      }
      images.push({ fingerprint: s.fingerprint, type: s.type, files: [fileOf(name, s.meta), fileOf(rootfsName[s.root.ftype as RootfsFtype], s.root)] })
    }
    const unified = ok.filter((i) => unifiedFtypes.includes(i.ftype))
    if (unified.length > 0) skip(`${what} ${unified.map((u) => u.key).join(", ")}`, "a unified image beside split ones: the split ones are copied")
  } else {
    const unified = unifiedFtypes.flatMap((f) => ok.filter((i) => i.ftype === f))
    const [first] = unified
    if (first === undefined) {
      skip(what, "no image: no metadata item with a rootfs and its fingerprint, and no unified image")
      return undefined
    }
    for (const other of unified.filter((u) => u.sha256 !== first.sha256)) skip(`${what} ${other.key}`, `a second unified image (${first.key} is copied): one per version here`)
    if (unified.some((u) => u.sha256 === first.sha256 && u.combined_type === "virtual-machine")) {
      skip(what, "a unified virtual-machine image: LXD would list it as a container, so this tree takes VMs split only")
      return undefined
    }
    if (typeMatches(options.filters, "container")) images.push({ fingerprint: first.sha256, type: "container", files: [fileOf(unifiedLocalName, first)] })
  }
  if (images.length === 0) return "filtered"
  return { product: productKey, version: ref.version, ref, files: [...files.values()], images, imageYaml: imageYamlFor(product, ref) }
}

/** The upstream catalogs (in the order the index names them) as version folders to copy. */
export const planSync = (catalogs: ReadonlyArray<UpstreamCatalog>, options: PlanOptions): SyncPlan => {
  const skipped: Array<Skipped> = []
  const skip = (what: string, reason: string) => skipped.push({ what, reason })
  const versions: Array<PlannedVersion> = []
  const byFolder = new Map<string, PlannedVersion>()
  let filteredOut = 0
  let beyondKeep = 0
  let withdrawn = 0
  const seenProducts = new Set<string>()
  for (const catalog of catalogs) {
    for (const [key, product] of sorted(Object.entries(catalog.products ?? {}))) {
      // the clients read the first catalog naming a product
      if (seenProducts.has(key)) continue
      seenProducts.add(key)
      const upstreamVersions = sorted(Object.entries(product.versions ?? {})).reverse()
      const arch = productArchitecture(product.arch ?? "")
      const os = osFolder(key, product)
      const release = folderName(product.release ?? "")
      const variant = folderName(product.variant || "default")
      if (arch === undefined) {
        skip(key, `unknown architecture '${product.arch ?? ""}' (the clients skip it too)`)
        continue
      }
      if (os === undefined || release === undefined || variant === undefined) {
        skip(key, `no ${os === undefined ? "os" : release === undefined ? "release" : "variant"} to name its folder by`)
        continue
      }
      const names = { os: [product.os ?? "", os], release: [product.release ?? "", release], arch, variant }
      if (!productMatches(options.filters, names)) {
        filteredOut += upstreamVersions.length
        continue
      }
      let kept = 0
      for (const [version, v] of upstreamVersions) {
        if (!startsWithDate(version) || !/^[A-Za-z0-9_:.-]+$/.test(version)) {
          skip(`${key} ${version}`, "its name does not start with a YYYYMMDD date or has characters other than A-Z a-z 0-9 _ : . - (the clients skip such versions)")
          continue
        }
        const ref: VersionRef = { os, release, arch, variant, version }
        const planned = planVersion(key, product, ref, sorted(Object.entries(v.items ?? {})), options, skip)
        if (planned === undefined) continue
        if (planned === "filtered") {
          filteredOut++
          continue
        }
        if (options.keep !== undefined && kept >= options.keep) {
          beyondKeep++
          continue
        }
        kept++
        const dir = versionDir(ref)
        if (options.withdrawn.has(dir)) {
          withdrawn++
          continue
        }
        const taken = byFolder.get(dir)
        if (taken !== undefined) {
          skip(`${key} ${version}`, `its folder ${dir} is that of ${taken.product} ${taken.version} already`)
          continue
        }
        byFolder.set(dir, planned)
        versions.push(planned)
      }
    }
  }
  return { versions, skipped, filteredOut, beyondKeep, withdrawn }
}

/** What the local catalog publishes: each fingerprint's version folder, and each file's sha256 and size. */
export interface LocalCatalog {
  /** Fingerprint → version folder, relative to the images folder. */
  readonly fingerprints: ReadonlyMap<string, string>
  /** File path relative to the images folder → its sha256 and size as published. */
  readonly files: ReadonlyMap<string, { readonly sha256: string; readonly size: number }>
}

export const emptyLocalCatalog: LocalCatalog = { fingerprints: new Map(), files: new Map() }

/** The local catalog's fingerprints and files (item paths are relative to the web root: `imagesPath/…`). */
export const localCatalogOf = (images: Images, imagesPath: string): LocalCatalog => {
  const fingerprints = new Map<string, string>()
  const files = new Map<string, { sha256: string; size: number }>()
  const prefix = `${imagesPath}/`
  for (const product of Object.values(images.products)) {
    for (const version of Object.values(product.versions)) {
      for (const item of Object.values(version.items)) {
        if (!item.path.startsWith(prefix)) continue
        const rel = item.path.slice(prefix.length)
        const dir = rel.slice(0, rel.lastIndexOf("/"))
        files.set(rel, { sha256: item.sha256, size: item.size })
        const prints = unifiedFtypes.includes(item.ftype)
          ? [item.sha256]
          : Object.entries(item).filter(([k, v]) => k.startsWith("combined_") && typeof v === "string").map(([, v]) => v as string)
        for (const fp of prints) if (!fingerprints.has(fp)) fingerprints.set(fp, dir)
      }
    }
  }
  return { fingerprints, files }
}

/** What a planned version still needs here, from the local catalog. */
export type VersionNeed =
  /** Every image is published already (in this folder, or one elsewhere too). */
  | { readonly _tag: "Published" }
  | {
      readonly _tag: "Needed"
      /** The images not published here yet, and the files they take. */
      readonly images: ReadonlyArray<PlannedImage>
      readonly files: ReadonlyArray<PlannedFile>
      /** Images published under another version folder: not copied twice (the same fingerprint twice breaks launches). */
      readonly elsewhere: ReadonlyArray<{ readonly fingerprint: string; readonly dir: string }>
    }

export const needOf = (v: PlannedVersion, local: LocalCatalog): VersionNeed => {
  const dir = versionDir(v.ref)
  const elsewhere = v.images.flatMap((i) => {
    const at = local.fingerprints.get(i.fingerprint)
    return at !== undefined && at !== dir ? [{ fingerprint: i.fingerprint, dir: at }] : []
  })
  const images = v.images.filter((i) => !local.fingerprints.has(i.fingerprint))
  if (images.length === 0) return { _tag: "Published" }
  const names = new Set(images.flatMap((i) => [...i.files]))
  return { _tag: "Needed", images, files: v.files.filter((f) => names.has(f.name)), elsewhere }
}

/** A file of a version folder as found here: missing, or there with this sha256. */
export type FileState = { readonly _tag: "Missing" } | { readonly _tag: "There"; readonly sha256: string }

/** Which files to fetch, and the names under which other bytes are there already (a version name is never reused). */
export const toFetch = (files: ReadonlyArray<PlannedFile>, found: ReadonlyMap<string, FileState>) => {
  const fetch: Array<PlannedFile> = []
  const conflicts: Array<{ readonly file: PlannedFile; readonly sha256: string }> = []
  for (const f of files) {
    const state = found.get(f.name) ?? { _tag: "Missing" }
    if (state._tag === "Missing") fetch.push(f)
    else if (state.sha256 !== f.sha256) conflicts.push({ file: f, sha256: state.sha256 })
  }
  return { fetch, conflicts }
}
