// The `watch` service as a child process, and chokidar alone, for part B.
import { spawn } from "node:child_process"
import { readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { bin, chokidarAlone } from "./paths.mjs"
import { BenchError, sleep, track, until } from "./util.mjs"

/** The log line that says the file watcher is ready (with --verbose): the reconcile after it is the one that counts. */
export const readyLine = /DEBUG the file watcher is ready/

/** The log line of a finished reconcile (with --verbose). */
export const reconciledLine = /reconciled (\d+) versions in ([\d.]+) s \((\d+) hashed, (\d+) from the hash cache\)/

/**
 * Starts `watch` over `tree.root`: images/, streams/v1, state/, watch.pid, watch.log. Times are
 * performance.now() values of this process; `launched` is taken just before the spawn.
 */
export const startWatch = (root, settle) => {
  const args = [
    bin, "--verbose", "--log-file", join(root, "watch.log"), "--config", join(root, "none.toml"),
    "watch", "--img-dir", join(root, "images"), "--streams-dir", join(root, "streams", "v1"),
    "--state-dir", join(root, "state"), "--pidfile", join(root, "watch.pid"), "--settle", String(settle)
  ]
  const launched = performance.now()
  const child = track(spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] }))
  let log = ""
  const waiters = new Set()
  let exited
  const check = (now) => {
    for (const w of waiters) {
      const m = w.re.exec(log.slice(w.from))
      if (m) { waiters.delete(w); w.resolve({ match: m, at: now }) }
    }
  }
  child.stderr.setEncoding("utf8")
  child.stderr.on("data", (d) => {
    const now = performance.now()
    log += d
    check(now)
  })
  child.once("exit", (code, signal) => {
    exited = code ?? signal
    for (const w of waiters) w.reject(new BenchError(`watch exited (${exited}) while waiting for ${w.re}\n${log.slice(-3000)}`))
    waiters.clear()
  })
  return {
    pid: child.pid,
    launched,
    get log() { return log },
    /** The exit code or signal, once it exited. */
    get exited() { return exited },
    mark: () => log.length,
    /** The first match of `re` in the log after position `from`, with the time its chunk arrived. */
    waitLog: (re, timeoutMs, from = 0) =>
      new Promise((resolve, reject) => {
        if (exited !== undefined) return reject(new BenchError(`watch already exited (${exited})\n${log.slice(-3000)}`))
        const w = { re, from, resolve, reject }
        const timer = setTimeout(() => {
          waiters.delete(w)
          reject(new BenchError(`timed out after ${(timeoutMs / 1000).toFixed(0)} s waiting for the watch log to show ${re}\n${log.slice(-3000)}`))
        }, timeoutMs)
        w.resolve = (v) => { clearTimeout(timer); resolve(v) }
        w.reject = (e) => { clearTimeout(timer); reject(e) }
        waiters.add(w)
        check(performance.now())
      }),
    /** SIGKILL, after a failure. */
    kill: () => { if (exited === undefined) child.kill("SIGKILL") },
    /**
     * SIGTERM, and the exit within `timeoutMs` (else SIGKILL and an error). Sent only once the log was quiet
     * for 0.5 s: today's service, stopped within ~50 ms of its "reconciled" line, logs "stopped" and never exits.
     */
    stop: async (timeoutMs = 30000) => {
      for (let quiet = log.length; ; quiet = log.length) {
        await sleep(500)
        if (log.length === quiet) break
      }
      return new Promise((resolve, reject) => {
        if (exited !== undefined) return resolve(exited)
        const timer = setTimeout(() => {
          child.kill("SIGKILL")
          reject(new BenchError(`watch did not stop within ${(timeoutMs / 1000).toFixed(0)} s of SIGTERM`))
        }, timeoutMs)
        child.once("exit", (code, signal) => { clearTimeout(timer); resolve(code ?? signal) })
        child.kill("SIGTERM")
      })
    }
  }
}

/**
 * Polls images.json (a stat every 20 ms; read only when it changed) until `test(text)` holds; returns the
 * time the change was first seen. Fails after `timeoutMs`, or as soon as the service `svc` exits.
 */
export const waitCatalog = async (file, what, timeoutMs, test, svc) => {
  let last = ""
  return until(what, timeoutMs, () => {
    if (svc?.exited !== undefined) throw new BenchError(`watch exited (${svc.exited}) while waiting for ${what}\n${svc.log.slice(-3000)}`)
    let info
    try { info = statSync(file) } catch { return undefined }
    const id = `${info.ino}:${info.mtimeMs}:${info.size}`
    if (id === last) return undefined
    const seen = performance.now()
    last = id
    let text
    try { text = readFileSync(file, "utf8") } catch { return undefined }
    return test(text) ? seen : undefined
  })
}

/** chokidar alone over `folder`, in its own node: launch → ready as seen here, and what it reported. */
export const runChokidarAlone = (folder, timeoutMs) =>
  new Promise((resolve, reject) => {
    const launched = performance.now()
    const child = track(spawn(process.execPath, [chokidarAlone, folder], { stdio: ["ignore", "pipe", "pipe"] }))
    let out = ""
    let err = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new BenchError(`chokidar alone did not report ready within ${(timeoutMs / 1000).toFixed(0)} s over ${folder}`))
    }, timeoutMs)
    child.stdout.setEncoding("utf8")
    child.stderr.setEncoding("utf8")
    child.stderr.on("data", (d) => (err += d))
    child.stdout.on("data", (d) => {
      const at = performance.now()
      out += d
      if (!out.includes("\n")) return
      clearTimeout(timer)
      resolve({ seconds: (at - launched) / 1000, ...JSON.parse(out) })
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      if (!out.includes("\n")) reject(new BenchError(`chokidar alone exited (${code}) before ready: ${err.slice(-2000)}`))
    })
  })
