/**
 * A real OpenSSH server for the mirror tests: `/usr/sbin/sshd -D` on a free 127.0.0.1 port with a throwaway host
 * key and its own authorized_keys, for the user running the tests. Each client key is its own file; a key may be
 * limited with rrsync to a folder, as the README tells mirror owners to do.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { userInfo } from "node:os"
import { join } from "node:path"
import { freePort, waitForPort } from "../../e2e/support/Net.js"

export const sshdPath = "/usr/sbin/sshd"

export const rrsyncPath = (): string | undefined =>
  ["/usr/bin/rrsync", "/usr/share/doc/rsync/scripts/rrsync"].find((p) => existsSync(p))

export interface ClientKey {
  readonly path: string
  readonly publicKey: string
}

export const makeKey = (path: string): ClientKey => {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "lis-test", "-f", path])
  return { path, publicKey: readFileSync(`${path}.pub`, "utf8").trim() }
}

export interface RunningSshd {
  readonly port: number
  readonly user: string
  /** A known_hosts line pinning this server's host key. */
  readonly knownHostsLine: string
  readonly stop: () => Promise<void>
  /** Starts it again on the same port with the same keys. */
  readonly start: () => Promise<void>
}

/** Every process below `pid` (sshd's session children start sessions of their own: a group kill misses them). */
const descendants = (pid: number): ReadonlyArray<number> => {
  const children: Array<number> = []
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8")
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
      if (ppid === pid) children.push(Number(name))
    } catch {
      // gone meanwhile
    }
  }
  return children.flatMap((c) => [c, ...descendants(c)])
}

/**
 * Starts sshd in `dir`. `authorized` are the lines of its authorized_keys (a key, or `command="…",restrict key`).
 */
export const startSshd = async (dir: string, authorized: ReadonlyArray<string>): Promise<RunningSshd> => {
  mkdirSync("/run/sshd", { recursive: true })
  mkdirSync(dir, { recursive: true })
  const hostKey = join(dir, "host_key")
  if (!existsSync(hostKey)) execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey])
  writeFileSync(join(dir, "authorized_keys"), `${authorized.join("\n")}\n`, { mode: 0o600 })
  const port = await freePort()
  const user = userInfo().username
  writeFileSync(
    join(dir, "sshd_config"),
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      `AllowUsers ${user}`,
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      "LogLevel ERROR",
      ""
    ].join("\n")
  )
  let child: ChildProcess | undefined
  let log = ""
  const start = async () => {
    child = spawn(sshdPath, ["-D", "-e", "-f", join(dir, "sshd_config")], { stdio: ["ignore", "ignore", "pipe"] })
    child.stderr!.on("data", (d: Buffer) => (log += d.toString()))
    await waitForPort(port).catch((e) => {
      throw new Error(`${(e as Error).message}; sshd said: ${log}`)
    })
  }
  const stop = async () => {
    const c = child
    if (c === undefined || c.exitCode !== null || c.pid === undefined) return
    const sessions = descendants(c.pid)
    const exited = new Promise<void>((resolve) => c.once("exit", () => resolve()))
    c.kill("SIGTERM")
    for (const pid of sessions) {
      try {
        process.kill(pid, "SIGKILL")
      } catch {
        // gone already
      }
    }
    await exited
  }
  await start()
  const publicHostKey = readFileSync(`${hostKey}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ")
  return { port, user, knownHostsLine: `[127.0.0.1]:${port} ${publicHostKey}`, stop, start }
}
