/** Builds real image files for tests: metadata tarballs with tar and xz, squashfs with mksquashfs, qcow2-like disks. */
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"

export const tempDir = (prefix = "lis-test-"): string => mkdtempSync(join(tmpdir(), prefix))

export interface MetadataYamlOptions {
  readonly architecture?: string
  readonly creationDate?: number
  readonly os?: string
  readonly release?: string
  readonly variant?: string
}

export const metadataYaml = (o: MetadataYamlOptions = {}): string =>
  [
    `architecture: ${o.architecture ?? "x86_64"}`,
    `creation_date: ${o.creationDate ?? 1704103200}`,
    "properties:",
    `  os: ${o.os ?? "Debian"}`,
    `  release: ${o.release ?? "bookworm"}`,
    `  variant: ${o.variant ?? "default"}`,
    `  description: test image`,
    "templates: {}",
    ""
  ].join("\n")

export type Compression = "xz" | "gzip" | "bzip2" | "none"

/** A metadata tarball at `target` holding `metadata.yaml` (or `./metadata.yaml` with dotSlash). */
export const writeMetadataTarball = (
  target: string,
  yaml: string = metadataYaml(),
  options: { readonly compression?: Compression; readonly dotSlash?: boolean; readonly extra?: Record<string, string> } = {}
): void => {
  const work = tempDir("lis-meta-")
  try {
    writeFileSync(join(work, "metadata.yaml"), yaml)
    mkdirSync(join(work, "templates"))
    writeFileSync(join(work, "templates", "hostname.tpl"), "{{ container.name }}\n")
    for (const [name, content] of Object.entries(options.extra ?? {})) {
      mkdirSync(dirname(join(work, name)), { recursive: true })
      writeFileSync(join(work, name), content)
    }
    mkdirSync(dirname(target), { recursive: true })
    const flag = { xz: "-J", gzip: "-z", bzip2: "-j", none: "" }[options.compression ?? "xz"]
    const members = options.dotSlash ? ["."] : ["metadata.yaml", "templates", ...Object.keys(options.extra ?? {})]
    execFileSync("tar", [
      "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@1704103200",
      `-c${flag.replace("-", "")}f`, target, "-C", work, ...members
    ])
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/** Makes `target` with `build` from a tiny root filesystem of `files`, in a temp folder removed after. */
const fromTinyRoot = (target: string, files: Record<string, string>, build: (root: string) => void): void => {
  const work = tempDir("lis-rootfs-")
  try {
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(dirname(join(work, name)), { recursive: true })
      writeFileSync(join(work, name), content)
    }
    mkdirSync(dirname(target), { recursive: true })
    build(work)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/** A real squashfs of a tiny root filesystem; `seed` makes its bytes differ between versions. */
export const writeSquashfs = (target: string, seed = "1"): void =>
  fromTinyRoot(target, { "etc/hostname": `test-${seed}\n`, "etc/os-release": 'ID=debian\nVERSION_ID="12"\n' }, (root) =>
    execFileSync("mksquashfs", [root, target, "-noappend", "-quiet", "-no-progress", "-all-root", "-mkfs-time", "1704103200", "-all-time", "1704103200"], { stdio: "ignore" })
  )

/** A rootfs tarball (xz) of a tiny root filesystem. */
export const writeRootTarXz = (target: string, seed = "1"): void =>
  fromTinyRoot(target, { "etc/hostname": `tar-${seed}\n` }, (root) =>
    execFileSync("tar", ["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@1704103200", "-cJf", target, "-C", root, "."])
  )

/** A qcow2-like VM disk: the qcow2 magic `QFI\xfb` and some bytes. */
export const writeQcow2 = (target: string, seed = "1"): void => {
  mkdirSync(dirname(target), { recursive: true })
  writeFileSync(target, Buffer.concat([Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]), Buffer.alloc(4096, seed)]))
}
