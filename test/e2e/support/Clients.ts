/**
 * The real LXD and Incus clients, and the LXD daemon, each confined to a temp folder: HOME, LXD_CONF,
 * INCUS_CONF and LXD_DIR point inside it, so the real home and /var/lib/lxd are never touched.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process"
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"

export type ClientName = "lxc" | "incus"

export interface ListedImage {
  readonly fingerprint: string
  readonly type: "container" | "virtual-machine"
  readonly architecture: string
  readonly size: number
  readonly aliases: ReadonlyArray<{ readonly name: string }> | null
  readonly properties: Record<string, string>
}

export const clientEnv = (dir: string): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env }
  // a proxy would send 127.0.0.1 traffic elsewhere
  for (const k of ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]) delete env[k]
  return {
    ...env,
    HOME: join(dir, "home"),
    XDG_CONFIG_HOME: join(dir, "home", ".config"),
    XDG_CACHE_HOME: join(dir, "home", ".cache"),
    LXD_CONF: join(dir, "lxc-conf"),
    INCUS_CONF: join(dir, "incus-conf"),
    LXD_DIR: join(dir, "lxd")
  }
}

export const client = (dir: string, name: ClientName) => {
  const env = clientEnv(dir)
  const confDir = name === "lxc" ? env["LXD_CONF"]! : env["INCUS_CONF"]!
  const run = (args: ReadonlyArray<string>) => {
    const r = spawnSync(name, args, { env, encoding: "utf8", timeout: 120_000 })
    if (r.status !== 0) throw new Error(`${name} ${args.join(" ")} failed (${r.status}): ${r.stderr || r.stdout}`)
    return r.stdout
  }
  return {
    confDir,
    run,
    /** Pins the certificate in servercerts/NAME.crt, then adds the simplestreams remote. */
    addRemote: (remote: string, url: string, cert: string) => {
      mkdirSync(join(confDir, "servercerts"), { recursive: true })
      mkdirSync(env["HOME"]!, { recursive: true })
      copyFileSync(cert, join(confDir, "servercerts", `${remote}.crt`))
      run(["remote", "add", remote, url, "--protocol", "simplestreams", "--public"])
    },
    listImages: (remote: string): ReadonlyArray<ListedImage> => JSON.parse(run(["image", "list", `${remote}:`, "--format", "json"]))
  }
}

const hostsMark = (pid: number) => `# lxd-image-server test ${pid}`

/**
 * The LXD daemon looks up images.linuxcontainers.org and cloud-images.ubuntu.com when it starts: both are
 * mapped to 127.0.0.1 while it runs, so that nothing leaves the machine. /etc/hosts may be a bind mount, so it
 * is rewritten in place.
 */
const mapHosts = () => {
  const mark = hostsMark(process.pid)
  const hosts = readFileSync("/etc/hosts", "utf8")
  writeFileSync("/etc/hosts", `${hosts.endsWith("\n") ? hosts : `${hosts}\n`}127.0.0.1 images.linuxcontainers.org ${mark}\n127.0.0.1 cloud-images.ubuntu.com ${mark}\n`)
  return () => {
    const now = readFileSync("/etc/hosts", "utf8")
    writeFileSync("/etc/hosts", now.split("\n").filter((l) => !l.includes(mark)).join("\n"))
  }
}

export interface RunningLxd {
  readonly stop: () => Promise<void>
}

export const startLxd = async (dir: string): Promise<RunningLxd> => {
  const env = clientEnv(dir)
  const lxdDir = env["LXD_DIR"]!
  mkdirSync(lxdDir, { recursive: true, mode: 0o711 })
  const unmapHosts = mapHosts()
  const daemon: ChildProcess = spawn("lxd", ["--logfile", join(dir, "lxd.log")], { env, stdio: "ignore" })
  const ready = spawnSync("lxd", ["waitready", "--timeout", "110"], { env, encoding: "utf8", timeout: 120_000 })
  const stop = async () => {
    if (daemon.exitCode === null) {
      spawnSync("lxd", ["shutdown", "--timeout", "30"], { env, timeout: 60_000 })
      if (daemon.exitCode === null) daemon.kill("SIGKILL")
    }
    // the daemon unmounts its tmpfs mounts on a clean shutdown; be safe after a kill
    const mounts = readFileSync("/proc/mounts", "utf8").split("\n").map((l) => l.split(" ")[1] ?? "").filter((m) => m.startsWith(lxdDir)).sort().reverse()
    for (const m of mounts) spawnSync("umount", ["-l", m])
    unmapHosts()
  }
  if (ready.status !== 0) {
    await stop()
    let log = ""
    try { log = readFileSync(join(dir, "lxd.log"), "utf8").slice(-2000) } catch { /* no log */ }
    throw new Error(`the LXD daemon did not start: ${ready.stderr}\n${log}`)
  }
  return { stop }
}

export const certificatePem = (cert: string) => execFileSync("openssl", ["x509", "-in", cert]).toString()
