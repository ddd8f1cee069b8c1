/**
 * `serve` as a real process (the built command line) under a low `ulimit -n`, on 127.0.0.1 only: file
 * handles are closed after HEAD, after GET and after a client gives up mid-download, a full fd table answers
 * 503 (not 404), and the certificate's key under the root is not served.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs"
import type { ClientRequest } from "node:http"
import { Agent, request } from "node:https"
import { connect } from "node:net"
import { join } from "node:path"
import { binPath, runBinAsync } from "../support/Bin.js"
import { tempDir } from "../support/Images.js"
import { haveTools } from "../support/Tools.js"
import { waitFor } from "../support/WatchProcess.js"
import { freePort, waitForPort } from "../e2e/support/Net.js"

// serve makes its certificate with openssl
const ready = haveTools("openssl")

describe.skipIf(!ready)("serve, a real process with 96 file descriptors", () => {
  let base: string
  let root: string
  let port: number
  let child: ChildProcess
  let exited: Promise<number | null>
  let agent: Agent

  const openFds = () => readdirSync(`/proc/${child.pid}/fd`).length
  const log = () => readFileSync(join(base, "serve.log"), "utf8")

  /** One request; `abortAfterFirstChunk` drops the connection once the body starts arriving. */
  const call = (method: "GET" | "HEAD", path: string, abortAfterFirstChunk = false) =>
    new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port, path, method, agent, ca: readFileSync(join(root, "ssl", "lxd-image-server.crt")), servername: "localhost" },
        (res) => {
          const chunks: Array<Buffer> = []
          res.on("data", (c: Buffer) => {
            chunks.push(c)
            if (abortAfterFirstChunk) {
              req.destroy()
              resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) })
            }
          })
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }))
        }
      )
      req.on("error", (e) => (abortAfterFirstChunk ? undefined : reject(e)))
      req.end()
    })

  beforeAll(async () => {
    base = tempDir("lis-serve-fd-")
    root = join(base, "root")
    mkdirSync(join(root, "images"), { recursive: true })
    // big enough that a download is still running when the client drops it
    writeFileSync(join(root, "images", "big.bin"), Buffer.alloc(16 * 1024 * 1024, 7))
    symlinkSync("loop", join(root, "images", "loop"))
    const config = join(base, "config.toml")
    writeFileSync(config, `state_dir = "${join(base, "state")}"\npidfile = "${join(base, "serve.pid")}"\nsettle = 0.5\n`)
    port = await freePort()
    // exec keeps the pid: /proc/<pid>/fd is node's own table
    child = spawn("sh", ["-c", 'ulimit -n 96 && exec "$@"', "sh", process.execPath, binPath, "--log-file", join(base, "serve.log"), "--config", config,
      "serve", "--root-dir", root, "--ssl-dir", join(root, "ssl"), "--host", "127.0.0.1", "--port", String(port)], { stdio: "ignore" })
    exited = new Promise((r) => child.once("exit", (code) => r(code)))
    await waitForPort(port)
    // serve's watch writes the catalog of the (empty) images folder
    await waitFor("serve's catalog", () => existsSync(join(root, "streams", "v1", "index.json")) && log().includes("watching"))
    agent = new Agent({ keepAlive: true, maxSockets: 1 })
  }, 60_000)

  afterAll(async () => {
    agent?.destroy()
    if (child && child.exitCode === null) child.kill("SIGTERM")
    await exited
  })

  it("does not serve the certificate's key kept under the root, nor anything outside images/, streams/ and the page", async () => {
    for (const p of ["/ssl/lxd-image-server.key", "/ssl/lxd-image-server.crt", "/other.html", "/images/"]) {
      const r = await call("GET", p)
      expect([p, r.status, r.body.toString().includes("PRIVATE KEY")]).toEqual([p, 404, false])
    }
  })

  it("answers 500 for a file it cannot open (a symlink loop) and logs the path and the code", async () => {
    expect((await call("GET", "/images/loop")).status).toBe(500)
    await waitFor("the error in the log", () => log().includes("ELOOP"), 5_000)
    expect(log()).toMatch(new RegExp(`ERROR.*${join(root, "images", "loop")}.*ELOOP`))
  })

  it("closes the file after a whole GET and after a client drops a download", async () => {
    const before = openFds()
    for (let i = 0; i < 150; i++) expect((await call("GET", "/streams/v1/index.json")).status).toBe(200)
    for (let i = 0; i < 40; i++) expect((await call("GET", "/images/big.bin", true)).status).toBe(200)
    // the server learns of each drop asynchronously
    await waitFor("the dropped downloads' files to close", () => openFds() <= before + 3, 10_000)
    expect((await call("GET", "/streams/v1/index.json")).status).toBe(200)
  }, 60_000)

  // last: before the fix, the HEADs filled the fd table and every later answer was 404 for that reason alone
  it("closes the file after every HEAD: hundreds of them leave index.json servable and the fd table as it was", async () => {
    expect((await call("GET", "/streams/v1/index.json")).status).toBe(200)
    const before = openFds()
    for (let i = 0; i < 300; i++) {
      const head = await call("HEAD", i % 2 === 0 ? "/streams/v1/index.json" : "/images/big.bin")
      expect(head.status).toBe(200)
      expect(head.body.length).toBe(0)
    }
    const index = await call("GET", "/streams/v1/index.json")
    expect(index.status).toBe(200)
    expect(JSON.parse(index.body.toString()).format).toBe("index:1.0")
    expect(openFds()).toBeLessThanOrEqual(before + 3)
  }, 60_000)

  it("answers 503 while the fd table is full, logs EMFILE, and serves again once downloads are dropped", async () => {
    // a kept-alive connection to ask through once no new connection can be accepted
    expect((await call("GET", "/streams/v1/index.json")).status).toBe(200)
    const stuck: Array<ClientRequest> = []
    const stall = () =>
      new Promise<number | string>((resolve) => {
        const req = request({ host: "127.0.0.1", port, path: "/images/big.bin", agent: false, rejectUnauthorized: false }, (res) => {
          res.pause() // the server's stream waits on us, its file and socket stay open
          resolve(res.statusCode ?? 0)
        })
        req.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"))
        stuck.push(req.end())
      })
    let last: number | string = 200
    for (let i = 0; i < 60 && last === 200; i++) last = await stall()
    expect(last, "the fd table never filled").not.toBe(200)
    // the refused download's socket was closed again: one descriptor may be free, which a connection that
    // sends nothing takes (how many the service holds of its own decides whether one is)
    const idle = connect(port, "127.0.0.1")
    await new Promise((resolve) => idle.once("connect", resolve))
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect((await call("GET", "/streams/v1/index.json")).status).toBe(503)
    const emfile = new RegExp(`ERROR.*${join(root, "streams", "v1", "index.json")}.*EMFILE`)
    await waitFor("EMFILE for index.json in the log", () => emfile.test(log()), 5_000)
    const before = openFds()
    for (const req of stuck) req.destroy()
    idle.destroy()
    await waitFor("the dropped downloads' files to close", () => openFds() <= before - (stuck.length - 1), 10_000)
    expect((await call("GET", "/streams/v1/index.json")).status).toBe(200)
  }, 60_000)
  it("says it serves only once it listens: a second serve on the same port prints no address, one line of why, and exits 1", async () => {
    const other = join(base, "other")
    const config = join(other, "config.toml")
    mkdirSync(other, { recursive: true })
    writeFileSync(config, `state_dir = "${join(other, "state")}"\npidfile = "${join(other, "serve.pid")}"\n`)
    const second = await runBinAsync(["--log-file", join(other, "serve.log"), "--config", config, "serve", "--root-dir", join(other, "root"), "--ssl-dir", join(other, "ssl"), "--host", "127.0.0.1", "--port", String(port)])
    expect(second.code).toBe(1)
    expect(second.stdout).not.toContain("serving")
    expect(second.stderr).toContain("EADDRINUSE")
  }, 60_000)
})
