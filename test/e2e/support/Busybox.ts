/**
 * A tiny image both daemons launch: a rootfs of busybox-static (/bin/busybox, every applet a symlink to it,
 * /sbin/init among them) with an inittab that keeps one process running, as a unified tarball (what
 * `lxc image import` takes alone) and split (a metadata tarball and a squashfs).
 */
import { execFileSync } from "node:child_process"
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"

export const busybox = "/bin/busybox"

export interface BusyboxImage {
  readonly unified: string
  readonly meta: string
  readonly rootfs: string
}

export const writeBusyboxImage = (dir: string, o: { readonly creationDate: number; readonly os?: string; readonly release?: string }): BusyboxImage => {
  const tree = join(dir, "tree")
  const root = join(tree, "rootfs")
  for (const d of ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "tmp", "run", "root", "var"]) mkdirSync(join(root, d), { recursive: true })
  copyFileSync(busybox, join(root, "bin", "busybox"))
  for (const applet of execFileSync(busybox, ["--list-full"], { encoding: "utf8" }).split("\n").filter((a) => a !== "" && a !== "bin/busybox")) {
    const link = join(root, applet)
    symlinkSync(relative(dirname(link), join(root, "bin", "busybox")), link)
  }
  // busybox init without an inittab would respawn shells on ttys a container does not have
  writeFileSync(join(root, "etc", "inittab"), "::respawn:/bin/sleep 3600\n")
  writeFileSync(
    join(tree, "metadata.yaml"),
    `architecture: x86_64\ncreation_date: ${o.creationDate}\nproperties:\n  os: ${o.os ?? "busybox"}\n  release: "${o.release ?? "1.35"}"\n  description: busybox-static test image\n`
  )
  const image = { unified: join(dir, "busybox.tar.gz"), meta: join(dir, "meta.tar.xz"), rootfs: join(dir, "rootfs.squashfs") }
  execFileSync("tar", ["--owner=0", "--group=0", "--numeric-owner", "-czf", image.unified, "-C", tree, "metadata.yaml", "rootfs"])
  execFileSync("tar", ["--owner=0", "--group=0", "--numeric-owner", "-cJf", image.meta, "-C", tree, "metadata.yaml"])
  execFileSync("mksquashfs", [root, image.rootfs, "-noappend", "-quiet", "-all-root"])
  return image
}
