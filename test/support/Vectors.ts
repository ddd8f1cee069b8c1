/** The test vectors of SIMPLESTREAMS.md §6: file bytes, sizes and hashes, and the combined fingerprints. */
import type { HashedVersion } from "../../src/indexer/Catalog.js"
export const files = {
  m1: { text: "demo-metadata-debian\n", size: 21, sha256: "8fa9230ce77654206dee30a6e9a47084b34e297f289516be22d136bdce209568" },
  s1: { text: "demo-squashfs-debian\n", size: 21, sha256: "14a0fb80f0040b11cf4b192c19a17c38751df757e551b8e512ddd303fd6e68bb" },
  q1: { text: "demo-qcow2-debian\n", size: 18, sha256: "63e7213b722bd48ce4b65e5fd4af2d5284062798d619905a228ae2762b498f13" },
  m2: { text: "demo-metadata-alpine\n", size: 21, sha256: "5a72cb388c5e41d5aeef532e63065dc452c18bd6c85dc158668a4e15c16ad5c8" },
  r2: { text: "demo-roottarxz-alpine\n", size: 22, sha256: "c900bf295cc2552779629df0a320eb3f14d344cc58587132b09262a920e8a6eb" },
  m3: { text: "demo-metadata-fedora\n", size: 21, sha256: "bbfab6a370e8ecb4ef32f843889b0516f100cd7e946294a53882cbce1bf52c38" },
  q3: { text: "demo-qcow2-fedora\n", size: 18, sha256: "98891407b18f0314d1cc333cb6de745ffa2cdb497e68bb03c140a99a4a77b853" }
} as const

export const combined = {
  m1s1: "4db43075e5e8fe9d018fa73bd93f02b8228fb0c43340dce08ad16c9878706b21",
  m1q1: "2b3f796d23c9641ef6e602425df013bd82c753709c8b93fe1342f3fd1f81febd",
  m2r2: "c49580a32f82587beda08808c7941e42409857a60c213abbf7bc2bea3b5af546",
  m3q3: "0dd355b9eeaabde0109ba4431cb8236a68f82082e63c8e6bea7a1054c015660b"
} as const

/** The §13 example versions, hashed: a Debian container and VM sharing one metadata file, an Alpine root.tar.xz, a Fedora VM. */
const meta = { architecture: "x86_64", creationDate: 1724313720, properties: {} }
const version = "20260822_0742"
export const hashedVersions = {
  debian: {
    ref: { os: "debian", release: "bookworm", arch: "amd64", variant: "default", version },
    metadata: [{ name: "incus.tar.xz", size: files.m1.size, sha256: files.m1.sha256, metadata: { ...meta, properties: { os: "Debian" } } }],
    rootfs: [
      { name: "rootfs.squashfs", ftype: "squashfs", size: files.s1.size, sha256: files.s1.sha256, combined: { "incus.tar.xz": combined.m1s1 } },
      { name: "disk.qcow2", ftype: "disk-kvm.img", size: files.q1.size, sha256: files.q1.sha256, combined: { "incus.tar.xz": combined.m1q1 } }
    ]
  },
  alpine: {
    ref: { os: "alpine", release: "3.20", arch: "arm64", variant: "default", version },
    metadata: [{ name: "lxd.tar.xz", size: files.m2.size, sha256: files.m2.sha256, metadata: { ...meta, architecture: "aarch64" } }],
    rootfs: [{ name: "rootfs.tar.xz", ftype: "root.tar.xz", size: files.r2.size, sha256: files.r2.sha256, combined: { "lxd.tar.xz": combined.m2r2 } }]
  },
  fedora: {
    ref: { os: "fedora", release: "40", arch: "amd64", variant: "cloud", version },
    metadata: [{ name: "incus.tar.xz", size: files.m3.size, sha256: files.m3.sha256, metadata: meta }],
    rootfs: [{ name: "disk.qcow2", ftype: "disk-kvm.img", size: files.q3.size, sha256: files.q3.sha256, combined: { "incus.tar.xz": combined.m3q3 } }]
  }
} as const satisfies Record<string, HashedVersion>
