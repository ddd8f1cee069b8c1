/**
 * The embedded server's app in-process (plain HTTP on a free port of 127.0.0.1): what it answers for files it
 * must serve, must hide, and cannot open.
 */
import { HttpClient, HttpClientRequest, HttpServer } from "@effect/platform"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it } from "@effect/vitest"
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { staticApp } from "../../src/server/HttpServe.js"
import { tempDir } from "../support/Images.js"
import { captureLogs } from "../support/Logs.js"

const makeRoot = () => {
  const root = tempDir("lis-http-")
  mkdirSync(join(root, "streams", "v1"), { recursive: true })
  mkdirSync(join(root, "images", "debian"), { recursive: true })
  mkdirSync(join(root, "ssl"))
  writeFileSync(join(root, "streams", "v1", "index.json"), '{"format":"index:1.0","index":{}}\n')
  writeFileSync(join(root, "images", "debian", "file.bin"), "0123456789")
  writeFileSync(join(root, "ssl", "lxd-image-server.key"), "-----BEGIN PRIVATE KEY-----\n")
  writeFileSync(join(root, "top.txt"), "not under images/ or streams/\n")
  // open(2) of a symlink loop fails with ELOOP: a failure that is not "not found", provoked even as root
  symlinkSync("loop", join(root, "images", "loop"))
  // a link inside images/ to the key: what is opened must be under images/ or streams/ as well
  symlinkSync("../../ssl/lxd-image-server.key", join(root, "images", "debian", "key"))
  return root
}

/** Runs `f` against the app serving `root`, with every log line kept. */
const withApp = <A, E>(root: string, f: (client: HttpClient.HttpClient) => Effect.Effect<A, E>) => {
  const logs = captureLogs()
  return Effect.gen(function* () {
    yield* HttpServer.serveEffect(staticApp(root))
    const client = yield* HttpClient.HttpClient
    return { result: yield* f(client), lines: logs.lines }
  }).pipe(Effect.scoped, Effect.provide(NodeHttpServer.layerTest), Effect.provide(logs.layer))
}

const fetch = (client: HttpClient.HttpClient, request: HttpClientRequest.HttpClientRequest) =>
  client.execute(request).pipe(
    Effect.flatMap((r) => Effect.map(r.text, (body) => ({ status: r.status, headers: r.headers, body }))),
    Effect.scoped
  )

describe("the embedded server's app", () => {
  it.live("answers HEAD with the headers of GET and no body", () =>
    withApp(makeRoot(), (client) =>
      Effect.gen(function* () {
        const head = yield* fetch(client, HttpClientRequest.head("/streams/v1/index.json"))
        const get = yield* fetch(client, HttpClientRequest.get("/streams/v1/index.json"))
        const part = yield* fetch(client, HttpClientRequest.get("/images/debian/file.bin").pipe(HttpClientRequest.setHeader("range", "bytes=2-4")))
        return { head, get, part }
      })
    ).pipe(
      Effect.map(({ result: { head, get, part } }) => {
        expect([head.status, head.body, head.headers["content-length"], head.headers["content-type"]]).toEqual([200, "", String(get.body.length), "application/json"])
        expect([get.status, JSON.parse(get.body).format]).toEqual([200, "index:1.0"])
        expect([part.status, part.body, part.headers["content-range"]]).toEqual([206, "234", "bytes 2-4/10"])
      })
    ))

  it.live("serves nothing but images/ and streams/, not even through a link inside images/", () =>
    withApp(makeRoot(), (client) =>
      Effect.forEach(["/ssl/lxd-image-server.key", "/top.txt", "/", "/images/debian/key", "/images/debian", "/images/missing", "/images/debian/file.bin/x"], (p) =>
        Effect.map(fetch(client, HttpClientRequest.get(p)), (r) => [p, r.status, r.body.includes("PRIVATE")] as const)
      )
    ).pipe(
      Effect.map(({ result, lines }) => {
        for (const [p, status, leaked] of result) expect([p, status, leaked]).toEqual([p, 404, false])
        // not-found is the client's business, not an error of the server
        expect(lines.filter((l) => l.startsWith("ERROR"))).toEqual([])
      })
    ))

  it.live("answers a file it cannot open for another reason than absence with 500, and logs the path and the code", () => {
    const root = makeRoot()
    return withApp(root, (client) => fetch(client, HttpClientRequest.get("/images/loop"))).pipe(
      Effect.map(({ result, lines }) => {
        expect(result.status).toBe(500)
        const errors = lines.filter((l) => l.startsWith("ERROR"))
        expect(errors).toHaveLength(1)
        expect(errors[0]).toContain(join(root, "images", "loop"))
        expect(errors[0]).toContain("ELOOP")
      })
    )
  })
})
