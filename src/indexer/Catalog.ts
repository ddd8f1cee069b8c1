/**
 * The catalog model, pure: hashed versions in, the exact `images.json` and `index.json` out (SIMPLESTREAMS.md
 * §15). Nothing here touches the disk, so every client rule is tested with plain values.
 */
import { joinAliases, productAliases } from "../simplestreams/Aliases.js"
import { canonicalArchitecture } from "../simplestreams/Architecture.js"
import { type Compat, metadataFtypes } from "../simplestreams/Compat.js"
import { combinedFtype, combinedKeys, type MetadataFtype, type RootfsFtype } from "../simplestreams/Ftype.js"
import type { Images, Index, Item, Product } from "../simplestreams/Streams.js"
import { productArch, productKey, type Refusal, refusal, type VersionRef, versionDir } from "../tree/Layout.js"
import type { ImageYaml } from "../tree/ImageYaml.js"
import type { ImageMetadata } from "../tree/MetadataRules.js"
import { productProblem } from "./CatalogText.js"
import { imagePrecedence, sameImageRefusal } from "../publish/ImagePrecedence.js"

export interface HashedFile {
  readonly name: string
  readonly size: number
  readonly sha256: string
}

export interface HashedMetadata extends HashedFile {
  readonly name: MetadataFtype
  readonly metadata: ImageMetadata
}

export interface HashedRootfs extends HashedFile {
  readonly ftype: RootfsFtype
  /** sha256(metadata ‖ rootfs), by the name of the metadata file it was combined with. */
  readonly combined: Partial<Record<MetadataFtype, string>>
}

/** A unified image: its own sha256 is its fingerprint. */
export interface HashedUnified extends HashedFile {
  readonly metadata: ImageMetadata
}

/** A version whose every file was hashed: ready to publish. */
export interface HashedVersion {
  readonly ref: VersionRef
  readonly metadata: ReadonlyArray<HashedMetadata>
  readonly rootfs: ReadonlyArray<HashedRootfs>
  /** A unified image, alone in its version (then `metadata` and `rootfs` are empty). */
  readonly unified?: HashedUnified | undefined
  /** The version's image.yaml, as read with the last look at its folder. */
  readonly image?: ImageYaml | undefined
}

/**
 * Which metadata file each metadata item of a compat mode points at: its own file when the version has one
 * (`lxd.tar.xz` for the LXD item), else the one file the version has, shared by both clients.
 */
export const metadataSources = (
  compat: Compat,
  present: ReadonlyArray<MetadataFtype>
): ReadonlyArray<readonly [item: MetadataFtype, file: MetadataFtype]> =>
  present.length === 0
    ? []
    : metadataFtypes(compat).map((item) => [item, present.includes(item) ? item : present[0]!] as const)

export interface CatalogOptions {
  readonly compat: Compat
  /** The images folder relative to the web root, the folder that holds `streams/` (usually `images`). */
  readonly imagesPath: string
  /** Version folders already in the published catalog: a duplicate of one of them is the one refused. */
  readonly incumbents?: ReadonlySet<string>
}

export interface Catalog {
  readonly images: Images
  readonly index: Index
  /** Versions left out of this catalog, with the reason. */
  readonly refusals: ReadonlyArray<Refusal>
  /**
   * Aliases two products give for the same architecture (`Debian/…` and `debian/…` folders, or `amd64` and
   * `x86_64`): the client silently picks one of them, so each is worth a warning.
   */
  readonly aliasClashes: ReadonlyArray<string>
}

/**
 * The aliases more than one product claims for one architecture, as readable lines. Pure. The aliases and the
 * architecture of a product follow from its key (`os:release:arch:variant`), so a commit checks every product
 * without building any.
 */
export const aliasClashesOfKeys = (keys: ReadonlyArray<string>): ReadonlyArray<string> => {
  const owners = new Map<string, Array<string>>()
  for (const key of keys) {
    const arch = key.split(":")[2] ?? ""
    for (const alias of folderAliasesOfKey(key)) {
      const slot = `${alias} (${canonicalArchitecture(arch) ?? arch})`
      owners.set(slot, [...(owners.get(slot) ?? []), key])
    }
  }
  return [...owners]
    .filter(([, owning]) => owning.length > 1)
    .map(([slot, owning]) => `alias ${slot} is claimed by ${owning.join(" and ")}: clients pick one of them silently`)
}

/** What a product claims of the alias space: its aliases, for its architecture and instance types, since when. */
export interface AliasClaim {
  readonly key: string
  /** The canonical architecture (`amd64` and `x86_64` are one). */
  readonly arch: string
  readonly types: ReadonlyArray<"container" | "virtual-machine">
  readonly aliases: ReadonlyArray<string>
  /** Its oldest version: the product listed first claimed first. */
  readonly since: string
}

const vmFtypes: ReadonlySet<string> = new Set(["disk-kvm.img", "disk1.img", "uefi1.img"])
const containerFtypes: ReadonlySet<string> = new Set(["squashfs", "root.tar.xz", "lxd_combined.tar.gz", "incus_combined.tar.gz"])

/** The instance types items of these ftypes make. */
const instanceTypes = (ftypes: Iterable<string>): ReadonlyArray<"container" | "virtual-machine"> => {
  const types = new Set<"container" | "virtual-machine">()
  for (const ftype of ftypes) {
    if (vmFtypes.has(ftype)) types.add("virtual-machine")
    else if (containerFtypes.has(ftype)) types.add("container")
  }
  return [...types].sort()
}

const claim = (key: string, arch: string, ftypes: Iterable<string>, aliases: string, versions: Iterable<string>): AliasClaim => ({
  key,
  arch: canonicalArchitecture(arch) ?? arch,
  types: instanceTypes(ftypes),
  aliases: aliases === "" ? [] : aliases.split(","),
  since: [...versions].sort()[0] ?? ""
})

/** The claim of a product, from the product as it would be written. */
export const aliasClaimOf = (key: string, product: Product): AliasClaim =>
  claim(
    key,
    product.arch,
    Object.values(product.versions).flatMap((v) => Object.values(v.items).map((i) => i.ftype)),
    product.aliases,
    Object.keys(product.versions)
  )

/**
 * The same claim from the product's versions, without making its items: a restart claims every product at its
 * first commit (at 10,000 versions, making them all cost 0.3 s of that publish).
 */
export const aliasClaimOfVersions = (key: string, versions: ReadonlyArray<HashedVersion>, compat: Compat): AliasClaim => {
  const newest = versions.reduce((a, b) => (compareVersions(a, b) < 0 ? b : a))
  // metadata items make no instance type; a unified image's items are containers
  const ftypes = versions.flatMap((v) => [...v.rootfs.map((r) => r.ftype), ...(v.unified ? metadataFtypes(compat).map(combinedFtype) : [])])
  return claim(key, productArch(newest.ref), ftypes, productFields(newest, compat).aliases, versions.map((v) => v.ref.version))
}

/** The aliases a product's folders make (`os/release/variant`, and `os/release` for the default variant), from its key. */
export const folderAliasesOfKey = (key: string): ReadonlySet<string> => {
  const [os = "", release = "", , variant = ""] = key.split(":")
  return new Set(productAliases(os, release, variant))
}

/**
 * Who keeps each alias: an alias names one product per architecture and instance type (the client otherwise
 * picks one silently, SIMPLESTREAMS.md §8.2). A product's folder-made aliases come first: anyone can upload a
 * version with an old name, so an image.yaml never takes an alias another product's folders make. Among
 * claims of the same kind, the product that claimed it first keeps it. The refused claim gets a line naming
 * both products and the alias. Pure and stateless, so `update`, `watch` and `add` give the same catalog.
 */
export const resolveAliasClaims = (
  claims: Iterable<AliasClaim>
): { readonly kept: ReadonlyMap<string, string>; readonly clashes: ReadonlyArray<string> } => {
  const owners = new Map<string, { readonly key: string; readonly folderMade: boolean }>()
  const refused = new Set<string>()
  const clashes: Array<string> = []
  const ordered = [...claims].sort((a, b) => (a.since < b.since ? -1 : a.since > b.since ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  const folderMade = new Map(ordered.map((c) => [c.key, folderAliasesOfKey(c.key)]))
  // first every product's folder-made aliases, then what image.yaml files add
  for (const pass of [true, false]) {
    for (const claim of ordered) {
      for (const alias of claim.aliases) {
        if (folderMade.get(claim.key)!.has(alias) !== pass) continue
        const slots = claim.types.map((t) => `${alias}\u0000${claim.arch}\u0000${t}`)
        const owner = slots.map((s) => owners.get(s)).find((o) => o !== undefined && o.key !== claim.key)
        if (owner !== undefined) {
          const why = owner.folderMade && !pass ? " (its folders make it)" : ""
          clashes.push(`alias ${alias} (${claim.arch}) is claimed by ${owner.key} and ${claim.key}: ${owner.key} keeps it${why}, ${claim.key} does not get it`)
          refused.add(`${claim.key}\u0000${alias}`)
          continue
        }
        for (const s of slots) owners.set(s, { key: claim.key, folderMade: pass })
      }
    }
  }
  const kept = new Map(ordered.map((c) => [c.key, c.aliases.filter((a) => !refused.has(`${c.key}\u0000${a}`)).join(",")]))
  return { kept, clashes }
}

const byKey = <A>(entries: Iterable<readonly [string, A]>): Record<string, A> =>
  Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))

/** The image fingerprints of a version: one per rootfs and metadata file it was combined with. */
export const fingerprints = (version: HashedVersion): ReadonlyArray<string> => [
  ...version.rootfs.flatMap((r) => Object.values(r.combined)),
  ...(version.unified ? [version.unified.sha256] : [])
]

const versionItems = (version: HashedVersion, options: CatalogOptions): Record<string, Item> => {
  const base = `${options.imagesPath}/${versionDir(version.ref)}`
  const items: Array<readonly [string, Item]> = []
  const unified = version.unified
  if (unified) {
    // one item per client, both pointing at the one tarball; its sha256 is the fingerprint (§5, §6)
    for (const ftype of metadataFtypes(options.compat).map(combinedFtype)) {
      items.push([ftype, { ftype, path: `${base}/${unified.name}`, sha256: unified.sha256, size: unified.size }])
    }
  }
  for (const [itemFtype, fileName] of metadataSources(options.compat, version.metadata.map((m) => m.name))) {
    const meta = version.metadata.find((m) => m.name === fileName)!
    const combined: Record<string, string> = {}
    for (const rootfs of version.rootfs) {
      const sha = rootfs.combined[fileName]
      if (sha === undefined) continue
      for (const key of combinedKeys(rootfs.ftype)) combined[key] = sha
    }
    items.push([itemFtype, { ftype: itemFtype, path: `${base}/${meta.name}`, sha256: meta.sha256, size: meta.size, ...combined }])
  }
  for (const rootfs of version.rootfs) {
    items.push([rootfs.name, { ftype: rootfs.ftype, path: `${base}/${rootfs.name}`, sha256: rootfs.sha256, size: rootfs.size }])
  }
  return byKey(items)
}

/**
 * Product fields come from the newest version: its image.yaml first, then its metadata.yaml, then the folders.
 * Requirements go under the key each client of the compat mode reads (SIMPLESTREAMS.md §3.2).
 */
const productFields = (newest: HashedVersion, compat: Compat): Omit<Product, "versions"> => {
  const { ref, image = {} } = newest
  const properties = (newest.unified ?? newest.metadata[0])?.metadata.properties ?? {}
  const releaseAliases = image.release_aliases?.[ref.release] ?? []
  const requirements = image.requirements
  return {
    aliases: joinAliases([
      ...productAliases(ref.os, ref.release, ref.variant),
      ...releaseAliases.flatMap((release) => productAliases(ref.os, release, ref.variant)),
      ...(image.aliases ?? [])
    ]),
    arch: productArch(ref),
    os: image.distro_name || properties["os"] || ref.os,
    release: ref.release,
    release_title: image.release_title || properties["release_title"] || ref.release,
    variant: ref.variant,
    ...(requirements && compat !== "lxd" ? { requirements } : {}),
    ...(requirements && compat !== "incus" ? { lxd_requirements: requirements } : {})
  }
}

/** A product of these versions of it (sorted by version, or not: the newest speaks for the product). */
export const productOf = (versions: ReadonlyArray<HashedVersion>, options: Omit<CatalogOptions, "incumbents">): Product => {
  const sorted = [...versions].sort(compareVersions)
  return {
    ...productFields(sorted[sorted.length - 1]!, options.compat),
    versions: byKey(sorted.map((v) => [v.ref.version, { items: versionItems(v, options) }] as const))
  }
}

/**
 * Checks one version on its own, as the product it would make alone: every item must match the format
 * clients accept. A version that would make the catalog invalid is refused alone, before it is merged, so
 * no single version can fail the whole catalog.
 */
export const checkVersion = (version: HashedVersion, options: Omit<CatalogOptions, "incumbents">): Refusal | undefined => {
  const problem = productProblem(productOf([version], options))
  return problem === undefined ? undefined : refusal(versionDir(version.ref), `would not be valid in images.json: ${problem}`)
}

const compareVersions = (a: HashedVersion, b: HashedVersion): number => {
  const ka = `${productKey(a.ref)}\u0000${a.ref.version}`
  const kb = `${productKey(b.ref)}\u0000${b.ref.version}`
  return ka < kb ? -1 : ka > kb ? 1 : 0
}

/** The version folders a written catalog lists, read back from its item paths. */
export const catalogVersionDirs = (images: Images, imagesPath: string): ReadonlySet<string> =>
  new Set(
    Object.values(images.products).flatMap((p) =>
      Object.values(p.versions).flatMap((v) => {
        const path = Object.values(v.items)[0]?.path
        return path?.startsWith(`${imagesPath}/`) ? [path.slice(imagesPath.length + 1, path.lastIndexOf("/"))] : []
      })
    )
  )

/**
 * The whole catalog of these versions at once (for embedders and tests; `update` and `watch` publish through
 * the Publisher). Of versions listing the same image, the one the Publisher would keep stays (ImagePrecedence).
 */
export const buildCatalog = (versions: ReadonlyArray<HashedVersion>, options: CatalogOptions): Catalog => {
  const refusals: Array<Refusal> = []
  const seen = new Map<string, string>()
  const grouped = new Map<string, Array<HashedVersion>>()
  const order = imagePrecedence((key) => options.incumbents?.has(key) ?? false)
  const byPrecedence = [...versions].sort((a, b) => order(versionDir(a.ref), versionDir(b.ref)))
  for (const version of byPrecedence) {
    const dir = versionDir(version.ref)
    const invalid = checkVersion(version, options)
    if (invalid) {
      refusals.push(invalid)
      continue
    }
    // taken in this order, the first version to list an image is the one that keeps it
    const twin = fingerprints(version).find((f) => seen.has(f))
    if (twin !== undefined) {
      refusals.push(sameImageRefusal(dir, seen.get(twin)!, twin))
      continue
    }
    for (const f of fingerprints(version)) seen.set(f, dir)
    const key = productKey(version.ref)
    grouped.set(key, [...(grouped.get(key) ?? []), version])
  }
  const products = byKey([...grouped].map(([key, list]) => [key, productOf(list, options)] as const))
  const keys = Object.keys(products)
  const images: Images = { content_id: "images", datatype: "image-downloads", format: "products:1.0", products }
  const index: Index = {
    format: "index:1.0",
    index:
      keys.length === 0
        ? {}
        : {
            images: {
              datatype: "image-downloads",
              path: "streams/v1/images.json",
              format: "products:1.0",
              products: [keys[0]!, ...keys.slice(1)]
            }
          }
  }
  return { images, index, refusals, aliasClashes: aliasClashesOfKeys(Object.keys(products)) }
}
