/**
 * The images one catalog version offers, read from its items, pure: what a client can launch by fingerprint.
 * A split image is a rootfs item with the combined fingerprint a metadata item gives for it; a unified image is
 * a `lxd_combined.tar.gz` / `incus_combined.tar.gz` item, its own sha256 the fingerprint (SIMPLESTREAMS.md §5, §6).
 */
import { type CombinedFtype, combinedKeys, instanceType, isMetadataFileName, type RootfsFtype } from "./Ftype.js"
import type { Item } from "./Streams.js"

export interface VersionImage {
  readonly type: "container" | "virtual-machine"
  /** The rootfs item's ftype, or the unified item's (`lxd_combined.tar.gz` when LXD sees it). */
  readonly ftype: RootfsFtype | CombinedFtype
  readonly fingerprint: string
  /** Bytes a client downloads: the metadata file and the rootfs, or the unified tarball. */
  readonly size: number
  /** Which clients see it: `lxd` reads `lxd.tar.xz` / `lxd_combined.tar.gz` items, `incus` the `incus` ones. */
  readonly clients: ReadonlyArray<string>
}

const rootfsFtypes: ReadonlyArray<string> = ["squashfs", "root.tar.xz", "disk-kvm.img"]
const isRootfsItem = (item: Item): item is Item & { ftype: RootfsFtype } => rootfsFtypes.includes(item.ftype)
const unifiedClients: Readonly<Record<string, string>> = { "lxd_combined.tar.gz": "lxd", "incus_combined.tar.gz": "incus" }

/** The combined fingerprint a metadata item gives for a rootfs of this type, if it gives one. */
export const combinedOf = (meta: Item, ftype: RootfsFtype): string | undefined => {
  for (const key of combinedKeys(ftype)) {
    const value = (meta as Record<string, unknown>)[key]
    if (typeof value === "string") return value
  }
  return undefined
}

const clientOf = (metadataFtype: string) => metadataFtype.replace(/\.tar\.xz$/, "")

/**
 * Every image of a version: each rootfs item with each metadata item that carries its combined fingerprint,
 * and each unified tarball. Items giving one fingerprint (two metadata items sharing one file, or the two
 * unified items of one tarball) are one image seen by both clients.
 */
export const versionImages = (items: Readonly<Record<string, Item>>): ReadonlyArray<VersionImage> => {
  const all = Object.values(items)
  const images: Array<VersionImage> = []
  const metas = all.filter((i) => isMetadataFileName(i.ftype))
  for (const rootfs of all.filter(isRootfsItem)) {
    const byFingerprint = new Map<string, { size: number; clients: Array<string> }>()
    for (const meta of metas) {
      const fingerprint = combinedOf(meta, rootfs.ftype)
      if (fingerprint === undefined) continue
      const seen = byFingerprint.get(fingerprint) ?? { size: meta.size + rootfs.size, clients: [] }
      seen.clients.push(clientOf(meta.ftype))
      byFingerprint.set(fingerprint, seen)
    }
    for (const [fingerprint, { size, clients }] of byFingerprint) {
      images.push({ type: instanceType(rootfs.ftype), ftype: rootfs.ftype, fingerprint, size, clients: [...clients].sort() })
    }
  }
  const unified = new Map<string, { ftype: CombinedFtype; size: number; clients: Array<string> }>()
  for (const item of all) {
    const client = unifiedClients[item.ftype]
    if (client === undefined) continue
    const seen = unified.get(item.sha256)
    if (seen === undefined) unified.set(item.sha256, { ftype: item.ftype as CombinedFtype, size: item.size, clients: [client] })
    else {
      seen.clients.push(client)
      if (client === "lxd") seen.ftype = "lxd_combined.tar.gz"
    }
  }
  for (const [fingerprint, { ftype, size, clients }] of unified) images.push({ type: "container", ftype, fingerprint, size, clients: [...clients].sort() })
  return images
}
