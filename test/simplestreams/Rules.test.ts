import { describe, expect, it } from "@effect/vitest"
import { joinAliases, productAliases } from "../../src/simplestreams/Aliases.js"
import { canonicalArchitecture, isKnownArchitecture, productArchitecture, sameArchitecture } from "../../src/simplestreams/Architecture.js"
import { metadataFtypes } from "../../src/simplestreams/Compat.js"
import { combinedKeys, instanceType, isMetadataFileName, rootfsFtype } from "../../src/simplestreams/Ftype.js"

describe("architectures (SIMPLESTREAMS.md §7)", () => {
  it("knows the names both clients accept, and their canonical names", () => {
    for (const [name, canonical] of [
      ["amd64", "x86_64"], ["x86_64", "x86_64"], ["arm64", "aarch64"], ["aarch64", "aarch64"], ["armhf", "armv7l"],
      ["i386", "i686"], ["ppc64el", "ppc64le"], ["s390x", "s390x"], ["riscv64", "riscv64"], ["loong64", "loongarch64"]
    ] as const) {
      expect(canonicalArchitecture(name)).toBe(canonical)
    }
  })
  it("refuses unknown names, case included", () => {
    for (const name of ["foo", "AMD64", "x86-64", "", "arm64 "]) expect(isKnownArchitecture(name)).toBe(false)
  })
  it("writes the Debian-style product name", () => {
    expect(productArchitecture("x86_64")).toBe("amd64")
    expect(productArchitecture("aarch64")).toBe("arm64")
    expect(productArchitecture("ppc64le")).toBe("ppc64el")
    expect(sameArchitecture("amd64", "x86_64")).toBe(true)
    expect(sameArchitecture("amd64", "arm64")).toBe(false)
  })
})

describe("ftypes (§5)", () => {
  it("maps rootfs file names to the exact ftype", () => {
    expect(rootfsFtype("rootfs.squashfs")).toBe("squashfs")
    expect(rootfsFtype("any.squashfs")).toBe("squashfs")
    expect(rootfsFtype("rootfs.tar.xz")).toBe("root.tar.xz")
    expect(rootfsFtype("root.tar.xz")).toBe("root.tar.xz")
    expect(rootfsFtype("disk.qcow2")).toBe("disk-kvm.img")
    expect(rootfsFtype("disk-kvm.img")).toBe("disk-kvm.img")
  })
  it("ignores everything else, dotfiles such as rsync temporaries included", () => {
    for (const name of [".rootfs.squashfs.Ab12Cd", ".disk.qcow2.x", ".squashfs", "rootfs.tar.gz", "SHA256SUMS", "lxd.tar.xz", "rootfs.squashfs.vcdiff", "image.yaml"]) {
      expect(rootfsFtype(name)).toBeUndefined()
    }
    expect(isMetadataFileName("lxd.tar.xz")).toBe(true)
    expect(isMetadataFileName("incus.tar.xz")).toBe(true)
    expect(isMetadataFileName("meta.tar.xz")).toBe(false)
  })
  it("puts each combined hash under the key the clients read", () => {
    expect(combinedKeys("squashfs")).toEqual(["combined_squashfs_sha256"])
    expect(combinedKeys("root.tar.xz")).toEqual(["combined_rootxz_sha256", "combined_sha256"])
    expect(combinedKeys("disk-kvm.img")).toEqual(["combined_disk-kvm-img_sha256"])
    expect(instanceType("disk-kvm.img")).toBe("virtual-machine")
    expect(instanceType("squashfs")).toBe("container")
  })
  it("writes one metadata item per client", () => {
    expect(metadataFtypes("both")).toEqual(["incus.tar.xz", "lxd.tar.xz"])
    expect(metadataFtypes("lxd")).toEqual(["lxd.tar.xz"])
    expect(metadataFtypes("incus")).toEqual(["incus.tar.xz"])
  })
})

describe("aliases (§8)", () => {
  it("os/release/variant, plus os/release for the default variant, lower case", () => {
    expect(joinAliases(productAliases("Debian", "Bookworm", "default"))).toBe("debian/bookworm/default,debian/bookworm")
    expect(joinAliases(productAliases("fedora", "40", "cloud"))).toBe("fedora/40/cloud")
  })
  it("has no blanks and no duplicates", () => {
    expect(joinAliases(["a/b", " a/b ", "", "C/D"])).toBe("a/b,c/d")
  })
})
