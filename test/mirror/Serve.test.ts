/**
 * `serve` with a `[mirrors.NAME]` table pushes its catalog as `watch` does: sshd on 127.0.0.1, rsync over ssh,
 * the real program.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { freePort, waitForPort } from "../e2e/support/Net.js"
import { binPath } from "../support/Bin.js"
import { tempDir } from "../support/Images.js"
import { haveTools } from "../support/Tools.js"
import { addContainer, makeWebRoot, type WebRoot } from "../support/Tree.js"
import { waitFor } from "../support/WatchProcess.js"
import { expectSameCatalog, mirrorTable } from "./support/Mirror.js"
import { makeKey, type RunningSshd, sshdPath, startSshd } from "./support/Sshd.js"

const ready = haveTools(sshdPath, "ssh", "ssh-keygen", "rsync", "mksquashfs", "openssl")

describe.skipIf(!ready)("serve pushes to its mirrors", () => {
  let work: string
  let primary: WebRoot
  let sshd: RunningSshd
  let child: ChildProcess | undefined
  let exited: Promise<unknown> | undefined

  beforeAll(async () => {
    work = tempDir("lis-mirror-serve-")
    primary = makeWebRoot()
    const key = makeKey(join(work, "key"))
    sshd = await startSshd(join(work, "sshd"), [key.publicKey])
    writeFileSync(join(work, "known_hosts"), `${sshd.knownHostsLine}\n`)
    mkdirSync(join(work, "mirror-www"))
    writeFileSync(
      join(work, "config.toml"),
      [
        `state_dir = "${join(work, "state")}"`,
        `pidfile = "${join(work, "serve.pid")}"`,
        ...mirrorTable("eu1", { host: "127.0.0.1", user: sshd.user, port: sshd.port, key_path: key.path, root_dir: join(work, "mirror-www"), known_hosts: join(work, "known_hosts") }),
        ""
      ].join("\n")
    )
    addContainer(primary, "debian/bookworm/amd64/default/20240101_10:00", "1")
  }, 60_000)

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill("SIGTERM")
    await exited
    await sshd?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
    if (primary) rmSync(primary.root, { recursive: true, force: true })
  })

  it("the mirror gets the catalog serve publishes and its files", async () => {
    const port = await freePort()
    child = spawn(process.execPath, [binPath, "--log-file", join(work, "serve.log"), "--config", join(work, "config.toml"),
      "serve", "--root-dir", primary.root, "--ssl-dir", join(work, "ssl"), "--host", "127.0.0.1", "--port", String(port)], { stdio: "ignore" })
    exited = new Promise((r) => child!.once("exit", r))
    await waitForPort(port, 30_000)
    const same = (name: string) => {
      const mirrored = join(work, "mirror-www", "streams", "v1", name)
      return existsSync(mirrored) && readFileSync(mirrored, "utf8") === readFileSync(join(primary.streams, name), "utf8")
    }
    // index.json is the push's last file
    await waitFor("the push to the mirror", () => same("images.json") && same("index.json"), 120_000)
      .catch((e: Error) => {
        throw new Error(`${e.message}\n${readFileSync(join(work, "serve.log"), "utf8").slice(-3000)}`)
      })
    expectSameCatalog(primary, join(work, "mirror-www"))
  }, 180_000)
})
