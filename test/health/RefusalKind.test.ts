/** The kind of a refusal: each reason the code gives falls in a fixed kind, so metric labels stay a known set. */
import { describe, expect, it } from "@effect/vitest"
import { refusalKind, refusalKinds } from "../../src/health/RefusalKind.js"

const v = "debian/bookworm/amd64/default/20240101_10:00"

// reasons as the code words them (tree/Layout, tree/Scanner, tree/TarScan, tree/MetadataRules, tree/Metadata,
// indexer/VersionHasher, tree/Sha256Sums, indexer/Catalog, publish/Publisher)
const cases: ReadonlyArray<readonly [string, string, string]> = [
  [v, "folder name 'a b' has characters other than A-Z a-z 0-9 _ : . -", "layout"],
  ["debian/bookworm/foo/default/20240101_10:00", "unknown architecture folder 'foo': LXD and Incus would silently drop it", "layout"],
  [v, "no metadata file (lxd.tar.xz or incus.tar.xz) and no unified image tarball", "layout"],
  [v, "no rootfs file (*.squashfs, rootfs.tar.xz, root.tar.xz, *.qcow2 or disk-kvm.img)", "layout"],
  [v, "two rootfs files of type squashfs (a.squashfs, b.squashfs): one per type per version", "layout"],
  [v, "two unified image tarballs (a.tar.gz, b.tar.gz): one image per version", "layout"],
  [`${v}/rootfs.squashfs`, "empty file", "layout"],
  [`${v}/lxd.tar.xz`, "lxd.tar.xz is not a regular file (a fifo)", "layout"],
  ["debian/x", "symlink leading outside the images folder (to /etc)", "layout"],
  ["debian/x", "a symlink to a folder (/srv/x): changes inside it are not seen; use a real folder or a bind mount", "layout"],
  [`${v}/lxd.tar.xz`, "not a tarball (xz, gzip, bzip2, zstd or plain tar)", "metadata"],
  [`${v}/lxd.tar.xz`, "no metadata.yaml in the tarball", "metadata"],
  [`${v}/lxd.tar.xz`, "corrupt tar header (size)", "metadata"],
  [`${v}/lxd.tar.xz`, "metadata.yaml has no creation_date (Unix seconds, non-zero)", "metadata"],
  [`${v}/lxd.tar.xz`, "metadata.yaml says architecture aarch64, but the folder says amd64", "metadata"],
  [`${v}/lxd.tar.xz`, "not valid xz data (File format not recognized)", "metadata"],
  [`${v}/lxd.tar.xz`, "xz-compressed, but 'xz' cannot run on this host", "metadata"],
  [`${v}/image.tar.gz`, "rootfs/ comes before metadata.yaml: not a unified image as lxc or incus export it", "metadata"],
  [`${v}/lxd.tar.xz`, "decompresses to more than 1 MiB: not a metadata tarball", "metadata"],
  [`${v}/rootfs.squashfs`, "not listed in SHA256SUMS", "checksum"],
  [`${v}/rootfs.squashfs`, "sha256 ab does not match cd in SHA256SUMS (an upload not finished yet?)", "checksum"],
  [`${v}/SHA256SUMS`, "line 2 is not '<64 hex digits>  <file name>'", "checksum"],
  [`${v}/image.yaml`, "not valid YAML: bad indentation", "image_yaml"],
  [v, "the same image as debian/bookworm/amd64/default/20240102_10:00 (fingerprint 0123456789ab)", "duplicate"],
  [`${v}/rootfs.squashfs`, "changed while being hashed; it is tried again when it changes", "changing"],
  [v, "its files kept changing while they were hashed (3 times); it is tried again when they change", "changing"],
  [`${v}/rootfs.squashfs`, "file vanished", "unreadable"],
  [v, "cannot read folder: EACCES: permission denied", "unreadable"],
  [`${v}/rootfs.squashfs`, "EIO: i/o error, read", "unreadable"],
  [v, "would not be valid in images.json: products.x.aliases: bad", "catalog"],
  [v, "something nobody wrote yet", "other"]
]

describe("refusal kinds", () => {
  it.each(cases)("%s: %s → %s", (path, reason, kind) => {
    expect(refusalKind({ path, reason })).toBe(kind)
  })

  it("are a small fixed set, all used", () => {
    expect(new Set(cases.map(([, , k]) => k))).toEqual(new Set(refusalKinds))
  })
})
