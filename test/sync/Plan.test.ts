/**
 * The sync rules with plain values: upstream catalogs of every generator (ours, incus-simplestreams' flat
 * content-addressed one, lxd-imagebuilder's tree, both clients' metadata differing, unified images) become
 * version folders with the files to fetch and the fingerprints to check; filters, keep, withdrawals and folder
 * clashes; what the local catalog already has; item paths resolved as the clients resolve them.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { parseConfigText } from "../../src/config/AppConfig.js"
import { syncTargets } from "../../src/sync/SyncConfig.js"
import { parseImageYaml } from "../../src/tree/ImageYaml.js"
import { parseFilters } from "../../src/sync/SyncFilter.js"
import { localCatalogOf, needOf, type PlanOptions, planSync, toFetch } from "../../src/sync/SyncPlan.js"
import { parseCatalog, parseIndex, resolveUpstream, type UpstreamCatalog } from "../../src/sync/Upstream.js"
import { product, sha } from "../support/Products.js"
import { combined, files } from "../support/Vectors.js"

const remote = "https://images.example.com/lxd"
const options = (over: Partial<PlanOptions> = {}): PlanOptions => ({ remote, filters: {}, withdrawn: new Set(), ...over })
const filters = (...texts: Array<string>) => Either.getOrThrow(parseFilters(texts))

/** The §13 catalog as our own server writes it (both clients' items on one file). */
const ours: UpstreamCatalog = {
  products: {
    "debian:bookworm:amd64:default": {
      aliases: "debian/bookworm/default,debian/bookworm,debian/12/default,debian/12",
      arch: "amd64", os: "Debian", release: "bookworm", release_title: "bookworm", variant: "default",
      versions: {
        "20260822_0742": {
          items: {
            "incus.tar.xz": { ftype: "incus.tar.xz", path: "images/debian/bookworm/amd64/default/20260822_0742/incus.tar.xz", size: 21, sha256: files.m1.sha256, combined_squashfs_sha256: combined.m1s1, "combined_disk-kvm-img_sha256": combined.m1q1 },
            "lxd.tar.xz": { ftype: "lxd.tar.xz", path: "images/debian/bookworm/amd64/default/20260822_0742/incus.tar.xz", size: 21, sha256: files.m1.sha256, combined_squashfs_sha256: combined.m1s1, "combined_disk-kvm-img_sha256": combined.m1q1 },
            "root.squashfs": { ftype: "squashfs", path: "images/debian/bookworm/amd64/default/20260822_0742/rootfs.squashfs", size: 21, sha256: files.s1.sha256 },
            "disk.qcow2": { ftype: "disk-kvm.img", path: "images/debian/bookworm/amd64/default/20260822_0742/disk.qcow2", size: 18, sha256: files.q1.sha256 }
          }
        }
      }
    },
    "alpine:3.20:arm64:default": {
      aliases: "alpine/3.20/default,alpine/3.20", arch: "arm64", os: "Alpine", release: "3.20", release_title: "3.20", variant: "default",
      versions: {
        "20260822_0742": {
          items: {
            "lxd.tar.xz": { ftype: "lxd.tar.xz", path: "/images/alpine/lxd.tar.xz", size: 21, sha256: files.m2.sha256, combined_sha256: combined.m2r2 },
            "root.tar.xz": { ftype: "root.tar.xz", path: "images/alpine/rootfs.tar.xz", size: 22, sha256: files.r2.sha256 }
          }
        }
      }
    },
    "fedora:40:amd64:cloud": {
      aliases: "fedora/40/cloud", arch: "amd64", os: "Fedora", release: "40", release_title: "40", variant: "cloud",
      requirements: { secureboot: "false" },
      versions: {
        "20260822_0742": {
          items: {
            "incus.tar.xz": { ftype: "incus.tar.xz", path: "images/fedora/incus.tar.xz", size: 21, sha256: files.m3.sha256, "combined_disk-kvm-img_sha256": combined.m3q3 },
            "disk.qcow2": { ftype: "disk-kvm.img", path: "images/fedora/disk.qcow2", size: 18, sha256: files.q3.sha256 }
          }
        }
      }
    }
  }
}

describe("reading an upstream server", () => {
  it("takes the image catalogs an index names, as the clients pick them, and refuses what is not simplestreams", () => {
    expect(parseIndex(JSON.stringify({ format: "index:1.0", index: { images: { datatype: "image-downloads", path: "streams/v1/images.json", products: ["a"] }, other: { datatype: "content-download", path: "x.json", products: ["b"] } } }))).toEqual(Either.right(["streams/v1/images.json"]))
    expect(parseIndex("<html>nope</html>")).toEqual(Either.left(expect.stringMatching(/^not JSON/)))
    expect(parseIndex(JSON.stringify({ index: { images: { datatype: "image-downloads", path: "streams/v1/images.json", products: [] } } }))).toEqual(Either.left(expect.stringContaining("names no image catalog")))
    expect(parseIndex(JSON.stringify({ hello: 1 }))).toEqual(Either.left(expect.stringContaining("index")))
    // typed as the clients' structs: a string size fails the whole remote there, so it does here
    expect(parseCatalog(JSON.stringify({ products: { p: { versions: { "20240101": { items: { m: { ftype: "lxd.tar.xz", size: "21" } } } } } } }))).toEqual(Either.left(expect.stringContaining("products.p.versions.20240101.items.m.size")))
    expect(Either.isRight(parseCatalog(JSON.stringify({ content_id: "images", products: {}, unknown: true })))).toBe(true)
  })

  it("resolves item paths under the remote URL, as both clients join them", () => {
    expect(resolveUpstream(remote, "streams/v1/index.json")).toBe("https://images.example.com/lxd/streams/v1/index.json")
    expect(resolveUpstream(`${remote}/`, "/images/a b/x.squashfs")).toBe("https://images.example.com/lxd/images/a%20b/x.squashfs")
    expect(resolveUpstream(remote, "images/../../../etc/passwd")).toBe("https://images.example.com/etc/passwd")
    expect(resolveUpstream(remote, "images/20240206_07:42/lxd.tar.xz")).toBe("https://images.example.com/lxd/images/20240206_07:42/lxd.tar.xz")
    expect(resolveUpstream("https://u:p@h:8443/", "https://cdn.example.com/x")).toBe("https://u:p@h:8443/https:/cdn.example.com/x")
  })
})

describe("planning a sync", () => {
  it("copies our own server's catalog into the tree's layout, one metadata file for both clients", () => {
    const plan = planSync([ours], options())
    expect(plan.skipped).toEqual([])
    expect(plan.versions.map((v) => [`${v.ref.os}/${v.ref.release}/${v.ref.arch}/${v.ref.variant}/${v.ref.version}`, v.files.map((f) => f.name).sort()])).toEqual([
      ["alpine/3.20/arm64/default/20260822_0742", ["lxd.tar.xz", "rootfs.tar.xz"]],
      ["debian/bookworm/amd64/default/20260822_0742", ["disk.qcow2", "lxd.tar.xz", "rootfs.squashfs"]],
      ["fedora/40/amd64/cloud/20260822_0742", ["disk.qcow2", "incus.tar.xz"]]
    ])
    const debian = plan.versions[1]!
    expect(debian.images).toEqual([
      { fingerprint: combined.m1q1, type: "virtual-machine", files: ["lxd.tar.xz", "disk.qcow2"] },
      { fingerprint: combined.m1s1, type: "container", files: ["lxd.tar.xz", "rootfs.squashfs"] }
    ])
    expect(debian.files.find((f) => f.name === "lxd.tar.xz")).toEqual({
      name: "lxd.tar.xz", url: "https://images.example.com/lxd/images/debian/bookworm/amd64/default/20260822_0742/incus.tar.xz", sha256: files.m1.sha256, size: 21
    })
    // a leading slash stays below the remote; the legacy combined_sha256 names a root.tar.xz image
    expect(plan.versions[0]!.files.find((f) => f.name === "lxd.tar.xz")!.url).toBe("https://images.example.com/lxd/images/alpine/lxd.tar.xz")
    expect(plan.versions[0]!.images).toEqual([{ fingerprint: combined.m2r2, type: "container", files: ["lxd.tar.xz", "rootfs.tar.xz"] }])
  })

  it("writes upstream's aliases, os, title and requirements into image.yaml, in a form the tree accepts", () => {
    const plan = planSync([ours], options())
    const yaml = (os: string) => plan.versions.find((v) => v.ref.os === os)!.imageYaml!
    expect(Either.getOrThrow(parseImageYaml(yaml("debian")))).toEqual({ aliases: ["debian/12/default", "debian/12"], distro_name: "Debian" })
    expect(Either.getOrThrow(parseImageYaml(yaml("fedora")))).toEqual({ distro_name: "Fedora", requirements: { secureboot: "false" } })
    const odd = planSync([{ products: { "x:1:amd64:default": { aliases: "A b,ok/1,,x/1/default, spaced ", arch: "x86_64", os: "X Linux", release: "1", release_title: "One", variant: "default", lxd_requirements: { nesting: "true" }, versions: ours.products!["fedora:40:amd64:cloud"]!.versions } } }], options())
    expect(odd.versions[0]!.ref).toMatchObject({ os: "x", arch: "amd64" })
    expect(Either.getOrThrow(parseImageYaml(odd.versions[0]!.imageYaml!))).toEqual({ aliases: ["ok/1", "spaced"], distro_name: "X Linux", release_title: "One", requirements: { nesting: "true" } })
  })

  it("names the os folder by a tree-shaped product key first (image.yaml may rename the os), else by the os", () => {
    const versions = ours.products!["fedora:40:amd64:cloud"]!.versions
    const refs = planSync([{ products: {
      "debian:bookworm:amd64:default": { arch: "amd64", os: "Debian GNU/Linux", release: "bookworm", variant: "default", versions },
      "com.ubuntu.cloud:server:22.04:amd64": { arch: "amd64", os: "ubuntu", release: "jammy", versions },
      "Weird Name": { arch: "arm64", os: "Arch Linux ARM", release: "rolling", variant: "cloud init", versions }
    } }], options()).versions.map((v) => `${v.ref.os}/${v.ref.release}/${v.ref.arch}/${v.ref.variant}`)
    expect(refs).toEqual(["arch-linux-arm/rolling/arm64/cloud-init", "ubuntu/jammy/amd64/default", "debian/bookworm/amd64/default"])
  })

  it("reads incus-simplestreams' flat tree: Incus items only, files named by the metadata's hash, variant last in the key", () => {
    const meta = "ef938321eb026a87d2dc8890dcf6c3438d6f086efc7f14ede1f8b920a8b9fe02"
    const incus: UpstreamCatalog = {
      products: {
        "Debian:bookworm:default:amd64": {
          aliases: "Debian/bookworm/default", arch: "amd64", os: "Debian", release: "bookworm", release_title: "bookworm", variant: "default",
          versions: {
            "202401011000": {
              items: {
                "incus.tar.xz": { ftype: "incus.tar.xz", path: `images/${meta}.incus.tar.xz`, sha256: meta, size: 304, combined_squashfs_sha256: sha("a") },
                squashfs: { ftype: "squashfs", path: `images/${meta}.squashfs`, sha256: sha("b"), size: 4096 }
              }
            }
          }
        },
        "Tiny:1.0:default:amd64": {
          arch: "amd64", os: "Tiny", release: "1.0", variant: "default",
          versions: { "202401011000": { items: { "incus_combined.tar.gz": { ftype: "incus_combined.tar.gz", path: `images/${sha("c")}.incus_combined.tar.gz`, sha256: sha("c"), size: 999, combined_type: "container" } } } }
        }
      }
    }
    const plan = planSync([incus], options())
    expect(plan.skipped).toEqual([])
    expect(plan.versions.map((v) => [v.ref, v.files.map((f) => f.name), v.images.map((i) => i.fingerprint)])).toEqual([
      [{ os: "debian", release: "bookworm", arch: "amd64", variant: "default", version: "202401011000" }, ["incus.tar.xz", "rootfs.squashfs"], [sha("a")]],
      [{ os: "tiny", release: "1.0", arch: "amd64", variant: "default", version: "202401011000" }, ["image.tar.gz"], [sha("c")]]
    ])
    // Debian/bookworm/default is the tree's own alias, lower-cased
    expect(Either.getOrThrow(parseImageYaml(plan.versions[0]!.imageYaml!))).toEqual({ distro_name: "Debian" })
  })

  it("keeps each client's metadata file when they differ (each sees its own fingerprint), and skips what the tree cannot hold", () => {
    const plan = planSync([{ products: { "debian:bookworm:amd64:default": product() } }], options())
    const newest = plan.versions.find((v) => v.version === "20240102_10:00")!
    expect(newest.files.map((f) => [f.name, f.sha256]).sort()).toEqual([
      ["disk.qcow2", sha("6")], ["incus.tar.xz", sha("4")], ["lxd.tar.xz", sha("3")], ["rootfs.squashfs", sha("5")]
    ])
    expect(newest.images.map((i) => [i.fingerprint, i.files]).sort()).toEqual([
      [sha("b"), ["lxd.tar.xz", "rootfs.squashfs"]], [sha("c"), ["lxd.tar.xz", "disk.qcow2"]],
      [sha("d"), ["incus.tar.xz", "rootfs.squashfs"]], [sha("e"), ["incus.tar.xz", "disk.qcow2"]]
    ])
    const odd = planSync([{ products: {
      "u:1:sparc:default": { arch: "sparc", os: "U", release: "1", versions: {} },
      "u:2:amd64:default": { arch: "amd64", os: "U", release: "2", versions: {
        latest: { items: {} },
        "20240101": { items: {
          "lxd.tar.xz": { ftype: "lxd.tar.xz", path: "m", sha256: sha("1"), size: 1, "combined_disk1-img_sha256": sha("2") },
          "disk1.img": { ftype: "disk1.img", path: "d", sha256: sha("3"), size: 1 }
        } },
        "20240102": { items: { "lxd_combined.tar.gz": { ftype: "lxd_combined.tar.gz", path: "u", sha256: sha("4"), size: 1, combined_type: "virtual-machine" } } },
        "20240103": { items: { "lxd.tar.xz": { ftype: "lxd.tar.xz", path: "m", sha256: "NOT-A-SHA", size: 1 } } }
      } }
    } }], options())
    expect(odd.versions).toEqual([])
    expect(odd.skipped.map((s) => `${s.what}: ${s.reason}`)).toEqual([
      "u:1:sparc:default: unknown architecture 'sparc' (the clients skip it too)",
      "u:2:amd64:default latest: its name does not start with a YYYYMMDD date or has characters other than A-Z a-z 0-9 _ : . - (the clients skip such versions)",
      "u:2:amd64:default 20240103: no image: no metadata item with a rootfs and its fingerprint, and no unified image",
      "u:2:amd64:default 20240102: a unified virtual-machine image: LXD would list it as a container, so this tree takes VMs split only",
      "u:2:amd64:default 20240101 disk1.img: disk1.img (a legacy VM disk) has no place in this tree",
      "u:2:amd64:default 20240101: no image: no metadata item with a rootfs and its fingerprint, and no unified image"
    ])
  })

  it("filters by os, release, arch, variant and type; keeps the newest N; never brings back a version withdrawn here", () => {
    const names = (o: Partial<PlanOptions>) => planSync([ours], options(o)).versions.map((v) => `${v.ref.os} ${v.images.map((i) => i.type).join(",")}`)
    expect(names({ filters: filters("os=DEBIAN") })).toEqual(["debian virtual-machine,container"])
    expect(names({ filters: filters("arch=x86_64", "type=container") })).toEqual(["debian container"])
    expect(names({ filters: filters("os=debian", "os=alpine", "variant=default", "release=3.20") })).toEqual(["alpine container"])
    expect(names({ filters: filters("type=virtual-machine") })).toEqual(["debian virtual-machine", "fedora virtual-machine"])
    expect(planSync([ours], options({ filters: filters("type=virtual-machine") })).versions[0]!.files.map((f) => f.name)).toEqual(["lxd.tar.xz", "disk.qcow2"])
    expect(planSync([ours], options({ filters: filters("type=virtual-machine") })).filteredOut).toBe(1)
    expect(Either.isLeft(parseFilters(["arch=sparc"]))).toBe(true)
    expect(parseFilters(["colour=red"])).toEqual(Either.left('filter "colour=red": expected KEY=VALUE with KEY one of os, release, arch, variant, type'))
    expect(parseFilters(["type=vm"])).toEqual(Either.left('filter "type=vm": type is container or virtual-machine'))

    const two = { products: { "debian:bookworm:amd64:default": product() } }
    const kept = planSync([two], options({ keep: 1 }))
    expect(kept.versions.map((v) => v.version)).toEqual(["20240102_10:00"])
    expect(kept.beyondKeep).toBe(1)
    // a withdrawn version counts among the newest N, and is not replaced by an older one
    const withdrawn = planSync([two], options({ keep: 1, withdrawn: new Set(["debian/bookworm/amd64/default/20240102_10:00"]) }))
    expect([withdrawn.versions.length, withdrawn.withdrawn, withdrawn.beyondKeep]).toEqual([0, 1, 1])
  })

  it("two upstream products that would share a folder: the first keeps it", () => {
    const plan = planSync([{ products: { "Debian:bookworm:default:amd64": product(), "debian:bookworm:amd64:default": product() } }], options())
    expect(plan.versions.map((v) => v.product)).toEqual(["Debian:bookworm:default:amd64", "Debian:bookworm:default:amd64"])
    expect(plan.skipped.map((s) => s.reason)).toEqual([
      "its folder debian/bookworm/amd64/default/20240102_10:00 is that of Debian:bookworm:default:amd64 20240102_10:00 already",
      "its folder debian/bookworm/amd64/default/20240101_10:00 is that of Debian:bookworm:default:amd64 20240101_10:00 already"
    ])
  })
})

describe("what is missing here", () => {
  const plan = planSync([ours], options())
  const debian = plan.versions[1]!

  it("a version whose images are all published is not fetched; one published elsewhere is not copied twice", () => {
    const local = localCatalogOf(
      { content_id: "images", datatype: "image-downloads", format: "products:1.0", products: { "debian:bookworm:amd64:default": { ...product(), versions: {
        "20260822_0742": { items: {
          "lxd.tar.xz": { ftype: "lxd.tar.xz", path: "images/debian/bookworm/amd64/default/20260822_0742/lxd.tar.xz", sha256: files.m1.sha256, size: 21, combined_squashfs_sha256: combined.m1s1 },
          "rootfs.squashfs": { ftype: "squashfs", path: "images/debian/bookworm/amd64/default/20260822_0742/rootfs.squashfs", sha256: files.s1.sha256, size: 21 }
        } }
      } } } },
      "images"
    )
    expect(local.files.get("debian/bookworm/amd64/default/20260822_0742/rootfs.squashfs")).toEqual({ sha256: files.s1.sha256, size: 21 })
    // the VM is what is missing: its disk, and the metadata file it shares
    const need = needOf(debian, local)
    expect(need._tag === "Needed" && [need.images.map((i) => i.type), need.files.map((f) => f.name), need.elsewhere]).toEqual([["virtual-machine"], ["lxd.tar.xz", "disk.qcow2"], []])
    expect(needOf({ ...debian, images: debian.images.filter((i) => i.type === "container") }, local)).toEqual({ _tag: "Published" })
    const moved = needOf({ ...debian, ref: { ...debian.ref, version: "20270101_0000" } }, local)
    expect(moved._tag === "Needed" && moved.elsewhere).toEqual([{ fingerprint: combined.m1s1, dir: "debian/bookworm/amd64/default/20260822_0742" }])
  })

  it("fetches the files that are missing, and refuses other bytes under a name that is there", () => {
    const found = new Map([
      ["lxd.tar.xz", { _tag: "There", sha256: files.m1.sha256 } as const],
      ["rootfs.squashfs", { _tag: "There", sha256: sha("9") } as const]
    ])
    const { fetch, conflicts } = toFetch(debian.files, found)
    expect(fetch.map((f) => f.name)).toEqual(["disk.qcow2"])
    expect(conflicts.map((c) => [c.file.name, c.sha256])).toEqual([["rootfs.squashfs", sha("9")]])
  })
})

describe("[sync.NAME] tables", () => {
  const config = (text: string) => parseConfigText("/etc/lis.toml", text)
  const reason = (text: string) => Either.match(config(text), { onLeft: (e) => e.message, onRight: () => "accepted" })

  it("settles every key, the interval's default included", () => {
    const file = Either.getOrThrow(config('[sync.lxc]\nurl = "https://images.example.com"\nfilters = ["os=debian", "os=alpine", "type=container"]\nkeep = 2\n\n[sync.b]\nurl = "http://10.0.0.1/lxd"\ninterval = 600\n'))
    expect(syncTargets(file.sync)).toEqual([
      { name: "b", url: "http://10.0.0.1/lxd", certFile: undefined, filters: {}, keep: undefined, intervalMs: 600_000 },
      { name: "lxc", url: "https://images.example.com", certFile: undefined, filters: { os: ["debian", "alpine"], type: ["container"] }, keep: 2, intervalMs: 3_600_000 }
    ])
  })

  it("refuses a bad table with the line and the reason", () => {
    expect(reason('[sync.a]\nurl = "ftp://x"\n')).toBe('config file /etc/lis.toml, line 2: sync.a.url: "ftp://x" is not an https:// (or http://) URL')
    expect(reason('[sync.a]\nurl = "https://x"\nfilters = ["arch=sparc"]\n')).toBe(`config file /etc/lis.toml: sync.a.filters.0: filter "arch=sparc": unknown architecture 'sparc'`)
    expect(reason('[sync.a]\nurl = "https://x"\nkepe = 3\n')).toBe("config file /etc/lis.toml, line 3: unknown key 'sync.a.kepe' (known keys of a sync: url, cert, filters, keep, interval)")
    expect(reason('[sync.a]\nurl = "https://x"\ninterval = 5\n')).toMatch(/^config file \/etc\/lis.toml, line 3: sync.a.interval: Expected a number greater than or equal to 60/)
    expect(reason('[sync.a]\nurl = "http://x"\ncert = "/c.pem"\n')).toMatch(/^config file \/etc\/lis.toml, line 1: sync.a: cert: a certificate is for an https:\/\/ url/)
    expect(reason('[sync."a b"]\nurl = "https://x"\n')).toMatch(/sync\.a b: Expected a sync name of letters, digits, _ and - \(up to 64\)/)
    expect(reason("[sync.a]\n")).toMatch(/sync\.a\.url: is missing/)
  })
})
