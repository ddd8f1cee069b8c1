/**
 * A pidfile left behind by a service that died names a pid the system may give to any other process (the
 * state folder's pidfile survives a reboot): `reload` must not signal it, `status` must not call it the
 * service, and a new service must not take it for one already running.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { runBin } from "../support/Bin.js"
import { makeWebRoot } from "../support/Tree.js"
import { sleep, startWatch, waitFor } from "../support/WatchProcess.js"

const others: Array<ReturnType<typeof spawn>> = []
afterEach(() => {
  for (const p of others.splice(0)) p.kill("SIGKILL")
})

describe("a pidfile naming another program's process", () => {
  it("is not signalled by reload, not reported running by status, and does not stop a service from starting", async () => {
    const w = makeWebRoot()
    const other = spawn("sleep", ["60"], { stdio: "ignore" })
    others.push(other)
    const pidfile = join(w.root, "watch.pid")
    writeFileSync(pidfile, `${other.pid}\n`)
    const args = ["--config", join(w.root, "none.toml"), "--log-file", join(w.root, "log")]
    const reload = runBin([...args, "reload", "--pidfile", pidfile])
    expect(reload.code).toBe(1)
    expect(reload.stderr).toContain(`the pidfile ${pidfile} names process ${other.pid}, which is not lxd-image-server (is the service running?)`)
    await sleep(200)
    expect(other.exitCode).toBeNull()
    expect(other.signalCode).toBeNull()
    const status = runBin([...args, "status", "--pidfile", pidfile, "--img-dir", w.images, "--streams-dir", w.streams])
    expect(status.stdout).not.toContain("service running")
    // a service starts over it, and writes its own pid there
    const watch = startWatch(w)
    try {
      await waitFor("the service to start", () => watch.log().includes("watching "), 20_000, watch.log)
      expect(watch.log()).not.toContain("already running")
      expect(readFileSync(pidfile, "utf8").trim()).toBe(String(watch.child.pid))
    } finally {
      await watch.stop("SIGKILL")
    }
  }, 30_000)
})
