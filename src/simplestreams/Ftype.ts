/**
 * Item types (SIMPLESTREAMS.md §5): which file names are metadata or rootfs, the exact `ftype` each gets,
 * and the key on the metadata item that carries the combined fingerprint for each rootfs type.
 */

export type MetadataFtype = "lxd.tar.xz" | "incus.tar.xz"
export type RootfsFtype = "squashfs" | "root.tar.xz" | "disk-kvm.img"

export const metadataFileNames: ReadonlyArray<MetadataFtype> = ["lxd.tar.xz", "incus.tar.xz"]

export const isMetadataFileName = (name: string): name is MetadataFtype =>
  (metadataFileNames as ReadonlyArray<string>).includes(name)

/**
 * The ftype of a rootfs file, or undefined for a file that is not one. Dotfiles (rsync's temporary
 * `.rootfs.squashfs.Ab12Cd`, editors' swap files) are never rootfs files.
 */
export const rootfsFtype = (name: string): RootfsFtype | undefined => {
  if (name.startsWith(".")) return undefined
  if (name.endsWith(".squashfs") && name.length > ".squashfs".length) return "squashfs"
  if (name === "rootfs.tar.xz" || name === "root.tar.xz") return "root.tar.xz"
  if ((name.endsWith(".qcow2") && name.length > ".qcow2".length) || name === "disk-kvm.img") return "disk-kvm.img"
  return undefined
}

/** The item types of a unified image (one tarball with metadata.yaml and rootfs/), one per client. */
export type CombinedFtype = "lxd_combined.tar.gz" | "incus_combined.tar.gz"

/** The unified item each client reads, by the metadata item it reads for split images (§5). */
export const combinedFtype = (meta: MetadataFtype): CombinedFtype =>
  meta === "lxd.tar.xz" ? "lxd_combined.tar.gz" : "incus_combined.tar.gz"

/**
 * A tarball that may be a unified image: `*.tar.gz`, `*.tar.xz` or `*.tar.zst` (`lxc image export` writes
 * `<fingerprint>.tar.gz`), other than the names of metadata tarballs and rootfs tarballs.
 */
export const isUnifiedFileName = (name: string): boolean =>
  !name.startsWith(".") &&
  /^.+\.tar\.(gz|xz|zst)$/.test(name) &&
  !isMetadataFileName(name) &&
  rootfsFtype(name) === undefined

/** The keys on the metadata item that hold sha256(metadata ‖ rootfs) for a rootfs of this type. */
export const combinedKeys = (ftype: RootfsFtype): ReadonlyArray<string> => {
  switch (ftype) {
    case "squashfs":
      return ["combined_squashfs_sha256"]
    case "root.tar.xz":
      // combined_sha256 is the legacy key and means root.tar.xz only, never squashfs (§6).
      return ["combined_rootxz_sha256", "combined_sha256"]
    case "disk-kvm.img":
      return ["combined_disk-kvm-img_sha256"]
  }
}

/** The instance type a client derives from a rootfs ftype. */
export const instanceType = (ftype: RootfsFtype): "container" | "virtual-machine" =>
  ftype === "disk-kvm.img" ? "virtual-machine" : "container"
