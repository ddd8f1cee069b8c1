/** A temporary web root with real images in `images/`, laid out as uploads would leave it. */
import { createHash } from "node:crypto"
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { metadataYaml, tempDir, writeMetadataTarball, writeQcow2, writeRootTarXz, writeSquashfs } from "./Images.js"

export interface WebRoot {
  readonly root: string
  readonly images: string
  readonly streams: string
  /** Absolute path of a version folder under images/. */
  readonly version: (rel: string) => string
}

/** `SHA256SUMS` of the files in a version folder (or of `names`), in sha256sum's own format. */
export const writeSha256Sums = (dir: string, names?: ReadonlyArray<string>) => {
  const listed = names ?? readdirSync(dir).filter((n) => !n.startsWith(".") && n !== "SHA256SUMS").sort()
  const lines = listed.map((n) => `${createHash("sha256").update(readFileSync(join(dir, n))).digest("hex")}  ${n}\n`)
  writeFileSync(join(dir, "SHA256SUMS"), lines.join(""))
}

export const makeWebRoot = (): WebRoot => {
  const root = tempDir("lis-www-")
  const images = join(root, "images")
  const streams = join(root, "streams", "v1")
  mkdirSync(images, { recursive: true })
  return { root, images, streams, version: (rel) => join(images, rel) }
}

/** A container version: metadata tarball and squashfs. */
export const addContainer = (w: WebRoot, rel: string, seed: string, options: { meta?: "lxd.tar.xz" | "incus.tar.xz"; architecture?: string } = {}) => {
  const dir = w.version(rel)
  writeMetadataTarball(join(dir, options.meta ?? "lxd.tar.xz"), metadataYaml({ creationDate: 1704103200 + Number(seed.replace(/\D/g, "") || 0), architecture: options.architecture ?? "x86_64" }))
  writeSquashfs(join(dir, "rootfs.squashfs"), seed)
  return dir
}

/**
 * The tree of the e2e and integration tests: a container + VM sharing one metadata file, an older version,
 * a root.tar.xz container on arm64, and junk that must never be published.
 */
export const buildMixedTree = (w: WebRoot) => {
  addContainer(w, "debian/bookworm/amd64/default/20240101_10:00", "old")
  const both = addContainer(w, "debian/bookworm/amd64/default/20240102_10:00", "new")
  writeQcow2(join(both, "disk.qcow2"), "vm-new")
  const alpine = w.version("alpine/3.20/arm64/default/20240103_10:00")
  writeMetadataTarball(join(alpine, "incus.tar.xz"), metadataYaml({ architecture: "aarch64", os: "Alpine", release: "3.20" }))
  writeRootTarXz(join(alpine, "rootfs.tar.xz"), "alpine")
  const vmOnly = w.version("fedora/40/amd64/cloud/20240104_10:00")
  writeMetadataTarball(join(vmOnly, "lxd.tar.xz"), metadataYaml({ os: "Fedora", release: "40", variant: "cloud" }))
  writeQcow2(join(vmOnly, "disk.qcow2"), "fedora")
  // junk beside the images
  addContainer(w, "debian/bookworm/amd64/default/.20240105_10:00", "staging")
  writeFileSync(join(both, ".rootfs.squashfs.Ab12Cd"), "rsync temp file")
  // the uploader's sums: published because every file matches them
  writeSha256Sums(both)
  const noRootfs = w.version("debian/bookworm/amd64/default/20240106_10:00")
  writeMetadataTarball(join(noRootfs, "lxd.tar.xz"))
  const noMeta = w.version("debian/bookworm/amd64/default/20240107_10:00")
  writeSquashfs(join(noMeta, "rootfs.squashfs"), "nometa")
  addContainer(w, "debian/bookworm/amd64/default/latest", "badname")
  addContainer(w, "debian/bookworm/amd64/default/20241350_10:00", "notadate")
  addContainer(w, "debian/bookworm/sparc/default/20240101_10:00", "sparc")
  const garbage = w.version("debian/bookworm/amd64/default/20240108_10:00")
  mkdirSync(garbage, { recursive: true })
  writeFileSync(join(garbage, "lxd.tar.xz"), Buffer.from("random bytes, not a tarball at all".repeat(40)))
  writeSquashfs(join(garbage, "rootfs.squashfs"), "garbage")
}
