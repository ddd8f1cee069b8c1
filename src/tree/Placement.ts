/**
 * Where `add` puts an exported image, pure: `images/{os}/{release}/{arch}/{variant}/{version}/` from its
 * metadata.yaml, each part overridable, and the names its files get there.
 */
import { Either } from "effect"
import { isKnownArchitecture, productArchitecture, sameArchitecture } from "../simplestreams/Architecture.js"
import type { Compression, ImageMetadata } from "./MetadataRules.js"
import { checkVersionRef, type VersionRef } from "./Layout.js"

export interface PlacementFlags {
  readonly os?: string | undefined
  readonly release?: string | undefined
  readonly variant?: string | undefined
  readonly arch?: string | undefined
  readonly version?: string | undefined
}

/** The version name of an image made at `seconds`: `YYYYMMDD_HH:MM`, UTC, the tree's own format. */
export const versionOfCreation = (seconds: number): string => {
  const d = new Date(seconds * 1000).toISOString()
  return `${d.slice(0, 4)}${d.slice(5, 7)}${d.slice(8, 10)}_${d.slice(11, 16)}`
}

/**
 * The version folder: flags first, then metadata.yaml (`os` lower-cased, as folder names go; `variant`
 * "default" when the image has none, as `lxc publish` leaves it), else an error naming the key. `--arch` may
 * name the image's architecture otherwise (`x86_64` for `amd64`), never another one (the tree would refuse
 * the version); an unknown one is refused as the tree refuses its folder.
 */
export const placeImage = (metadata: ImageMetadata, flags: PlacementFlags): Either.Either<VersionRef, string> => {
  const p = metadata.properties
  const os = flags.os ?? p["os"]?.toLowerCase()
  const release = flags.release ?? p["release"]
  if (!os) return Either.left("metadata.yaml has no properties.os: give --os")
  if (!release) return Either.left("metadata.yaml has no properties.release: give --release")
  if (flags.arch !== undefined && isKnownArchitecture(flags.arch) && !sameArchitecture(flags.arch, metadata.architecture)) {
    return Either.left(`--arch ${flags.arch} is not the architecture metadata.yaml gives (${metadata.architecture})`)
  }
  const ref: VersionRef = {
    os,
    release,
    arch: flags.arch ?? productArchitecture(metadata.architecture) ?? metadata.architecture,
    variant: flags.variant ?? (p["variant"] || "default"),
    version: flags.version ?? versionOfCreation(metadata.creationDate)
  }
  const refused = checkVersionRef(ref)
  return refused ? Either.left(refused.reason) : Either.right(ref)
}

/** What the second file of a split export is, by its first bytes. */
export type RootfsKind = "squashfs" | "qcow2" | "tarball"

export const rootfsKindOf = (head: Uint8Array, compression: Compression): RootfsKind | undefined => {
  const starts = (...bytes: number[]) => bytes.every((b, i) => head[i] === b)
  if (starts(0x68, 0x73, 0x71, 0x73)) return "squashfs"
  if (starts(0x51, 0x46, 0x49, 0xfb)) return "qcow2"
  return compression === "xz" ? "tarball" : undefined
}

/** The names in the version folder: what the tree's rules read (SIMPLESTREAMS.md §5). */
export const splitNames = (kind: RootfsKind) =>
  ({ metadata: "lxd.tar.xz", rootfs: kind === "squashfs" ? "rootfs.squashfs" : kind === "qcow2" ? "disk.qcow2" : "rootfs.tar.xz" }) as const

export const unifiedName = (compression: Compression): string | undefined =>
  compression === "gzip" ? "image.tar.gz" : compression === "xz" ? "image.tar.xz" : compression === "zstd" ? "image.tar.zst" : undefined
