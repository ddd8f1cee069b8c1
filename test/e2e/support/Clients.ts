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
    LXD_DIR: join(dir, "lxd"),
    INCUS_DIR: join(dir, "incus")
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
let hostsMapped = 0
const mapHosts = () => {
  const mark = hostsMark(process.pid)
  // one mapping for the daemons of this process (LXD and Incus may run together): the last to stop removes it
  if (hostsMapped++ === 0) {
    const hosts = readFileSync("/etc/hosts", "utf8")
    writeFileSync("/etc/hosts", `${hosts.endsWith("\n") ? hosts : `${hosts}\n`}127.0.0.1 images.linuxcontainers.org ${mark}\n127.0.0.1 cloud-images.ubuntu.com ${mark}\n`)
  }
  let mapped = true
  return () => {
    if (!mapped) return
    mapped = false
    if (--hostsMapped > 0) return
    const now = readFileSync("/etc/hosts", "utf8")
    writeFileSync("/etc/hosts", now.split("\n").filter((l) => !l.includes(mark)).join("\n"))
  }
}

export interface RunningLxd {
  readonly stop: () => Promise<void>
}

/** A daemon in its own folder: how it starts, says it is ready, and shuts down. */
interface DaemonKind {
  readonly name: string
  /** The env variable naming its folder. */
  readonly dirVariable: "LXD_DIR" | "INCUS_DIR"
  readonly start: (log: string) => readonly [string, ReadonlyArray<string>]
  readonly waitready: readonly [string, ReadonlyArray<string>]
  readonly shutdown: readonly [string, ReadonlyArray<string>]
}

const startDaemon = async (dir: string, kind: DaemonKind): Promise<RunningLxd> => {
  const env = clientEnv(dir)
  const daemonDir = env[kind.dirVariable]!
  mkdirSync(daemonDir, { recursive: true, mode: 0o711 })
  const unmapHosts = mapHosts()
  const logFile = join(dir, `${kind.name}.log`)
  const [command, args] = kind.start(logFile)
  const daemon: ChildProcess = spawn(command, args, { env, stdio: "ignore" })
  const ready = spawnSync(kind.waitready[0], kind.waitready[1], { env, encoding: "utf8", timeout: 120_000 })
  const stop = async () => {
    if (daemon.exitCode === null) {
      spawnSync(kind.shutdown[0], kind.shutdown[1], { env, timeout: 60_000 })
      if (daemon.exitCode === null) daemon.kill("SIGKILL")
    }
    // the daemon unmounts its tmpfs mounts on a clean shutdown; be safe after a kill
    const mounts = readFileSync("/proc/mounts", "utf8").split("\n").map((l) => l.split(" ")[1] ?? "").filter((m) => m.startsWith(daemonDir)).sort().reverse()
    for (const m of mounts) spawnSync("umount", ["-l", m])
    unmapHosts()
  }
  if (ready.status !== 0) {
    await stop()
    let log = ""
    try { log = readFileSync(logFile, "utf8").slice(-2000) } catch { /* no log */ }
    throw new Error(`the ${kind.name} daemon did not start: ${ready.stderr}\n${log}`)
  }
  return { stop }
}

export const startLxd = (dir: string): Promise<RunningLxd> =>
  startDaemon(dir, {
    name: "lxd",
    dirVariable: "LXD_DIR",
    start: (log) => ["lxd", ["--logfile", log]],
    waitready: ["lxd", ["waitready", "--timeout", "110"]],
    shutdown: ["lxd", ["shutdown", "--timeout", "30"]]
  })

/** The Incus daemon of the incus-base package (not on PATH). */
export const incusd = "/usr/libexec/incus/incusd"

/** The Incus daemon, with its own INCUS_DIR, as root's group (there is no incus-admin group here). */
export const startIncus = (dir: string): Promise<RunningLxd> =>
  startDaemon(dir, {
    name: "incus",
    dirVariable: "INCUS_DIR",
    start: (log) => [incusd, ["--group", "root", "--logfile", log]],
    waitready: ["incus", ["admin", "waitready", "--timeout", "110"]],
    shutdown: ["incus", ["admin", "shutdown", "--timeout", "30"]]
  })

/** A `dir` storage pool as the default profile's root disk: what a daemon needs to create instances. */
export const addDirPool = (dir: string, name: ClientName) => {
  const c = client(dir, name)
  c.run(["storage", "create", "default", "dir"])
  c.run(["profile", "device", "add", "default", "root", "disk", "path=/", "pool=default"])
}

/** Waits until the daemon reports the instance RUNNING (its init started and stayed up). */
export const waitRunning = async (dir: string, name: ClientName, instance: string, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs
  let status = ""
  while (Date.now() < deadline) {
    const listed = JSON.parse(client(dir, name).run(["list", instance, "--format", "json"])) as ReadonlyArray<{ readonly name: string; readonly status: string }>
    status = listed.find((i) => i.name === instance)?.status ?? "missing"
    if (status === "Running") return
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`${name}: instance ${instance} did not reach RUNNING (last status: ${status})`)
}

export const certificatePem = (cert: string) => execFileSync("openssl", ["x509", "-in", cert]).toString()
