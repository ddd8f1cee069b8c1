/**
 * An image the LXD daemon can launch: a squashfs of busybox-static (its /sbin/init, and a shell), with an
 * lxd.tar.xz metadata tarball. A user can use it: `lxc launch`, then `lxc exec … -- /bin/busybox true`.
 */
import { execFileSync } from "node:child_process"
import { copyFileSync, mkdirSync, symlinkSync } from "node:fs"
import { join } from "node:path"
import { metadataYaml, tempDir, writeMetadataTarball } from "../../support/Images.js"

export const busyboxPath = "/bin/busybox"

/** Writes the version folder `dir` (lxd.tar.xz + rootfs.squashfs); the alias clients see is `<os>/<release>` of its path. */
export const writeLaunchable = (dir: string, release = "1.36"): void => {
  writeMetadataTarball(join(dir, "lxd.tar.xz"), metadataYaml({ os: "Busybox", release }))
  const root = tempDir("lis-busybox-")
  for (const d of ["bin", "sbin", "etc", "dev", "proc", "sys", "tmp", "root", "run"]) mkdirSync(join(root, d))
  copyFileSync(busyboxPath, join(root, "bin", "busybox"))
  symlinkSync("busybox", join(root, "bin", "sh"))
  symlinkSync("../bin/busybox", join(root, "sbin", "init"))
  execFileSync("mksquashfs", [root, join(dir, "rootfs.squashfs"), "-noappend", "-quiet", "-no-progress", "-all-root"], { stdio: "ignore" })
}
