/**
 * The published catalog as the base for publishing one version without the journal (`add`), pure: images.json
 * read back into the hashed versions that render it, and the rule for when adding one version to it gives
 * exactly the catalog `update` would write, so that the rest of the catalog need be neither hashed nor built.
 *
 * Reading back loses what the catalog does not carry (each version's metadata.yaml and image.yaml); it keeps
 * what rendering needs: every item, and, on the newest version of each product, the product's fields as
 * written. Aliases are where it falls short: the catalog holds the aliases each product kept, not those it
 * claimed and lost (to an older claim, or to another product's folder-made aliases). So one version is added
 * in place only when no alias changes hands; otherwise the caller rebuilds (what `update` does), which is
 * always right.
 */
import { Either } from "effect"
import { aliasClaimOf, type HashedMetadata, type HashedRootfs, type HashedUnified, type HashedVersion, productOf } from "../indexer/Catalog.js"
import { joinAliases, productAliases } from "../simplestreams/Aliases.js"
import { canonicalArchitecture } from "../simplestreams/Architecture.js"
import type { Compat } from "../simplestreams/Compat.js"
import { combinedKeys, instanceType, isMetadataFileName, type RootfsFtype } from "../simplestreams/Ftype.js"
import { canonicalJson, type Images, type Item, type Product } from "../simplestreams/Streams.js"
import { productKey, type VersionRef, versionDir } from "../tree/Layout.js"
import type { ImageMetadata } from "../tree/MetadataRules.js"
import type { FoundPlan } from "../tree/Scanner.js"

export interface BaseOptions {
  readonly compat: Compat
  /** The images folder relative to the web root, as item paths begin. */
  readonly imagesPath: string
}

/** Not kept by the catalog; nothing renders it but the newest version's, which carries the product's fields instead. */
const unknownMetadata: ImageMetadata = { architecture: "", creationDate: 0, properties: {} }

const rootfsFtypes: ReadonlySet<string> = new Set<RootfsFtype>(["squashfs", "root.tar.xz", "disk-kvm.img"])
const unifiedFtypes: ReadonlySet<string> = new Set(["lxd_combined.tar.gz", "incus_combined.tar.gz"])

/** A product's `aliases` string as a list. */
const aliasList = (aliases: string): ReadonlyArray<string> => (aliases === "" ? [] : aliases.split(","))

const baseName = (p: string) => p.slice(p.lastIndexOf("/") + 1)

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)
const sha256 = /^[0-9a-f]{64}$/
const productFieldNames = ["aliases", "arch", "os", "release", "release_title", "variant"] as const

const isItem = (item: unknown): item is Item =>
  isRecord(item) &&
  typeof item["ftype"] === "string" &&
  typeof item["path"] === "string" &&
  typeof item["sha256"] === "string" &&
  sha256.test(item["sha256"]) &&
  Number.isInteger(item["size"]) &&
  Object.entries(item).every(([k, v]) => !k.startsWith("combined_") || (typeof v === "string" && sha256.test(v)))

/**
 * The parsed images.json as a catalog, when it has the shape this program writes (checked by hand: the
 * Schema takes 0.3 s at 10,000 versions, and what is not rendered again is written back as it was read).
 */
export const asWrittenCatalog = (parsed: unknown): Either.Either<Images, string> => {
  if (!isRecord(parsed) || !isRecord(parsed["products"])) return Either.left("no products")
  for (const [pk, product] of Object.entries(parsed["products"])) {
    if (!isRecord(product) || productFieldNames.some((f) => typeof product[f] !== "string") || !isRecord(product["versions"])) return Either.left(`${pk} is not a product`)
    for (const [name, version] of Object.entries(product["versions"])) {
      if (!isRecord(version) || !isRecord(version["items"]) || !Object.values(version["items"]).every(isItem)) return Either.left(`${pk} ${name} is not a version`)
    }
  }
  return Either.right(parsed as unknown as Images)
}

const byName = (a: { readonly name: string }, b: { readonly name: string }) => a.name.localeCompare(b.name)

/** One version of a written catalog, read back from its items; undefined when they are not what this program writes. */
const versionOf = (ref: VersionRef, items: Readonly<Record<string, Item>>): HashedVersion | undefined => {
  const all = Object.values(items)
  const unified = all.filter((i) => unifiedFtypes.has(i.ftype))
  const meta = all.filter((i) => isMetadataFileName(i.ftype))
  const rootfs = all.filter((i) => rootfsFtypes.has(i.ftype))
  if (unified.length + meta.length + rootfs.length !== all.length) return undefined
  if (unified.length > 0) {
    const [first] = unified
    if (meta.length + rootfs.length > 0 || unified.some((u) => u.path !== first!.path || u.sha256 !== first!.sha256)) return undefined
    const image: HashedUnified = { name: baseName(first!.path), size: first!.size, sha256: first!.sha256, metadata: unknownMetadata }
    return { ref, metadata: [], rootfs: [], unified: image }
  }
  const metadata: Array<HashedMetadata> = []
  for (const item of meta) {
    const name = baseName(item.path)
    if (!isMetadataFileName(name)) return undefined
    if (!metadata.some((m) => m.name === name)) metadata.push({ name, size: item.size, sha256: item.sha256, metadata: unknownMetadata })
  }
  if (metadata.length > 1) metadata.sort(byName)
  const files: Array<HashedRootfs> = rootfs.map((item) => {
    const combined: Record<string, string> = {}
    for (const m of metadata) {
      const carrier = meta.find((i) => baseName(i.path) === m.name)
      const sha = carrier?.[combinedKeys(item.ftype as RootfsFtype)[0] as keyof Item]
      if (typeof sha === "string") combined[m.name] = sha
    }
    return { name: baseName(item.path), ftype: item.ftype as RootfsFtype, size: item.size, sha256: item.sha256, combined }
  })
  if (files.length > 1) files.sort(byName)
  return { ref, metadata, rootfs: files }
}

/** The newest version with the product's fields as written: they render the same product again. */
const speakingFor = (version: HashedVersion, product: Product): HashedVersion => {
  const requirements = product.requirements ?? product.lxd_requirements
  return {
    ...version,
    image: {
      distro_name: product.os,
      release_title: product.release_title,
      aliases: aliasList(product.aliases),
      ...(requirements ? { requirements } : {})
    }
  }
}

/**
 * The version folders of a written catalog and their versions, read back. Left, with the reason, when it is
 * not a catalog of this images folder as this program writes it.
 */
export const versionsOfCatalog = (images: Images, options: BaseOptions): Either.Either<ReadonlyMap<string, HashedVersion>, string> => {
  const out = new Map<string, HashedVersion>()
  const prefix = `${options.imagesPath}/`
  for (const [pk, product] of Object.entries(images.products)) {
    const names = Object.keys(product.versions).sort()
    for (const name of names) {
      const items = product.versions[name]!.items
      const first = Object.values(items)[0]
      if (!first?.path.startsWith(prefix)) return Either.left(`${pk} ${name}: an item outside ${options.imagesPath}/`)
      const segments = first.path.slice(prefix.length).split("/")
      if (segments.length !== 6) return Either.left(`${pk} ${name}: item path ${first.path} is not in a version folder`)
      const [os, release, arch, variant, version] = segments as [string, string, string, string, string]
      const ref: VersionRef = { os, release, arch, variant, version }
      const key = versionDir(ref)
      if (version !== name || productKey(ref) !== pk) return Either.left(`${pk} ${name}: item path ${first.path} belongs to another version`)
      if (Object.values(items).some((i) => i.path.slice(0, i.path.lastIndexOf("/")) !== `${options.imagesPath}/${key}`)) {
        return Either.left(`${pk} ${name}: items in more than one folder`)
      }
      const read = versionOf(ref, items)
      if (!read) return Either.left(`${pk} ${name}: items this program does not write`)
      out.set(key, name === names[names.length - 1] ? speakingFor(read, product) : read)
    }
  }
  return Either.right(out)
}

/** How one version joins a written catalog. */
export type OneVersionRoute =
  /** Its product is rendered again, and nothing else changes. */
  | { readonly _tag: "InPlace" }
  /** Adding it in place could differ from `update`'s catalog: build the whole catalog. */
  | { readonly _tag: "Rebuild"; readonly reason: string }

type InstanceType = "container" | "virtual-machine"

/** The instance types of a version folder, from its files. */
const typesOfPlan = (plan: FoundPlan): ReadonlyArray<InstanceType> =>
  plan.unified ? ["container"] : [...new Set(plan.rootfs.map((r) => instanceType(r.ftype)))]

const sameProduct = (a: Product, b: Product) => canonicalJson(a) === canonicalJson(b)

const slot = (alias: string, arch: string, type: string) => `${alias}\u0000${arch}\u0000${type}`

/**
 * Whether the version folder `plan` (new, or listed already: then it replaces itself) can join the written
 * catalog `images`, read back as `base`, by rendering its product alone. It can when the catalog reads back
 * exactly, the version is not older than every other of its product (that would change who claimed first),
 * it keeps every alias its product had, and it claims no alias another product holds for its architecture and
 * instance types. Then the aliases of every other product stay as they are, as `update` would leave them.
 */
export const routeFor = (images: Images, base: ReadonlyMap<string, HashedVersion>, plan: FoundPlan, options: BaseOptions): OneVersionRoute => {
  const pk = productKey(plan.ref)
  const key = versionDir(plan.ref)
  const written = images.products[pk]
  const others = written ? Object.keys(written.versions).filter((v) => v !== plan.ref.version).sort() : []
  if (others.length > 0 && plan.ref.version < others[0]!) {
    return { _tag: "Rebuild", reason: `${key} is older than every other version of ${pk}, which changes the product's claim on its aliases` }
  }
  const newest = others.length === 0 || plan.ref.version > others[others.length - 1]!

  // what is rendered again must come back exactly as written: this product, and those whose aliases the
  // publisher renders again because, read back, they claim aliases they do not hold (lost to another product,
  // see resolveAliasClaims)
  const byProduct = new Map<string, Array<HashedVersion>>()
  for (const v of base.values()) {
    const list = byProduct.get(productKey(v.ref))
    if (list) list.push(v)
    else byProduct.set(productKey(v.ref), [v])
  }
  for (const [qk, product] of Object.entries(images.products)) {
    const versions = byProduct.get(qk) ?? []
    const ref = versions[0]?.ref
    if (!ref || versions.length !== Object.keys(product.versions).length) return { _tag: "Rebuild", reason: `${qk} does not read back` }
    if (qk !== pk && joinAliases([...productAliases(ref.os, ref.release, ref.variant), ...aliasList(product.aliases)]) === product.aliases) continue
    if (!sameProduct({ ...productOf(versions, options), aliases: product.aliases }, product)) {
      return { _tag: "Rebuild", reason: `${qk} in images.json is not what this program would write for it` }
    }
  }

  // the product's claim once the version is in: the new version's aliases when it is the newest, else those
  // the product holds; on every instance type of its versions
  const before = written ? aliasClaimOf(pk, { ...written, versions: Object.fromEntries(Object.entries(written.versions).filter(([v]) => v !== plan.ref.version)) }) : undefined
  const incoming = productOf([{ ref: plan.ref, metadata: [], rootfs: [], ...(plan.image ? { image: plan.image } : {}) }], options)
  const held = aliasList(written?.aliases ?? "")
  const aliases = newest ? aliasList(incoming.aliases) : held
  const dropped = held.filter((a) => !aliases.includes(a))
  if (dropped.length > 0) return { _tag: "Rebuild", reason: `${key} does not claim ${dropped.join(", ")}, which ${pk} holds: another product may take them` }
  const arch = canonicalArchitecture(incoming.arch) ?? incoming.arch
  const types = [...new Set([...(before?.types ?? []), ...typesOfPlan(plan)])]

  const owners = new Map<string, string>()
  for (const [qk, product] of Object.entries(images.products)) {
    if (qk === pk) continue
    const claim = aliasClaimOf(qk, product)
    for (const alias of claim.aliases) for (const t of claim.types) owners.set(slot(alias, claim.arch, t), qk)
  }
  for (const alias of aliases) {
    for (const t of types) {
      const owner = owners.get(slot(alias, arch, t))
      if (owner !== undefined) return { _tag: "Rebuild", reason: `alias ${alias} (${arch}, ${t}) of ${key} is held by ${owner}` }
    }
  }
  return { _tag: "InPlace" }
}
