/**
 * Launching a container in the test's LXD daemon (test/e2e/support/Clients.ts `startLxd`): a `dir` storage pool
 * and a root disk in the default profile, no network. The image must boot: an executable /sbin/init (see
 * test/support/Images.ts `writeBusyboxSquashfs`).
 */
import { client } from "./Clients.js"

/** Once per daemon: somewhere to put containers. */
export const makeLaunchable = (dir: string) => {
  const lxc = client(dir, "lxc")
  lxc.run(["storage", "create", "lis-test", "dir"])
  lxc.run(["profile", "device", "add", "default", "root", "disk", "path=/", "pool=lis-test"])
}

/**
 * The daemon downloads `image` (`remote:alias` or `remote:fingerprint`) and starts a container from it; the
 * container runs its init and answers a command. Then the container and the image are deleted again. Returns the
 * fingerprint the daemon stored.
 */
export const launches = (dir: string, image: string): string => {
  const lxc = client(dir, "lxc")
  const name = `lis-${process.pid}-${Date.now() % 100_000}`
  lxc.run(["launch", image, name])
  try {
    const info = JSON.parse(lxc.run(["list", name, "--format", "json"])) as ReadonlyArray<{ status: string; config: Record<string, string> }>
    if (info[0]?.status !== "Running") throw new Error(`${name} from ${image} is ${info[0]?.status ?? "missing"}`)
    const ps = lxc.run(["exec", name, "--", "/bin/busybox", "ps"])
    if (!ps.includes("init")) throw new Error(`${name} from ${image} runs no init: ${ps}`)
    return info[0]!.config["volatile.base_image"] ?? ""
  } finally {
    lxc.run(["delete", "--force", name])
    const fingerprints = (JSON.parse(lxc.run(["image", "list", "local:", "--format", "json"])) as ReadonlyArray<{ fingerprint: string }>).map((i) => i.fingerprint)
    for (const f of fingerprints) lxc.run(["image", "delete", `local:${f}`])
  }
}
