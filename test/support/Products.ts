/** Products as images.json holds them, as plain values, for the tests of what is rendered from a catalog. */
import type { Product } from "../../src/simplestreams/Streams.js"

export const sha = (c: string) => c.repeat(64)

/** debian:bookworm:amd64:default: an older container, then a container and a VM whose LXD and Incus metadata differ. */
export const product = (over: Partial<Product> = {}): Product => ({
  aliases: "debian/bookworm/default,debian/bookworm",
  arch: "amd64",
  os: "Debian",
  release: "bookworm",
  release_title: "bookworm",
  variant: "default",
  versions: {
    "20240101_10:00": {
      items: {
        "lxd.tar.xz": { ftype: "lxd.tar.xz", path: "images/a/lxd.tar.xz", sha256: sha("1"), size: 100, combined_squashfs_sha256: sha("a") },
        "incus.tar.xz": { ftype: "incus.tar.xz", path: "images/a/lxd.tar.xz", sha256: sha("1"), size: 100, combined_squashfs_sha256: sha("a") },
        "rootfs.squashfs": { ftype: "squashfs", path: "images/a/rootfs.squashfs", sha256: sha("2"), size: 1000 }
      }
    },
    "20240102_10:00": {
      items: {
        "lxd.tar.xz": { ftype: "lxd.tar.xz", path: "images/b/lxd.tar.xz", sha256: sha("3"), size: 200, combined_squashfs_sha256: sha("b"), "combined_disk-kvm-img_sha256": sha("c") },
        "incus.tar.xz": { ftype: "incus.tar.xz", path: "images/b/incus.tar.xz", sha256: sha("4"), size: 300, combined_squashfs_sha256: sha("d"), "combined_disk-kvm-img_sha256": sha("e") },
        "rootfs.squashfs": { ftype: "squashfs", path: "images/b/rootfs.squashfs", sha256: sha("5"), size: 2000 },
        "disk.qcow2": { ftype: "disk-kvm.img", path: "images/b/disk.qcow2", sha256: sha("6"), size: 5000 }
      }
    }
  },
  ...over
})
