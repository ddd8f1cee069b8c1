/**
 * The gate in front of `serve`'s static app, in-process (plain HTTP on a free port of 127.0.0.1), with the
 * real openssl checking passwords: what a request without the secret gets, what one with it gets, the
 * answers kept per header, and an htpasswd file changed under a running server.
 */
import { HttpClient, HttpClientRequest, HttpServer } from "@effect/platform"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { describe, expect, it } from "@effect/vitest"
import { mkdirSync, renameSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { staticApp } from "../../src/server/HttpServe.js"
import { type AccessForm, gateRules } from "../../src/server/PrivateAccess.js"
import { guard, makePasswordCheck } from "../../src/server/PrivateGate.js"
import { tempDir } from "../support/Images.js"
import { captureLogs } from "../support/Logs.js"
import { apr1, password, sha512 } from "../support/PasswordHashes.js"
import { haveTools } from "../support/Tools.js"

const token = "fR1vBKQYOWGLX2OuK2HY7AOsMbu4QD4B"
const basic = (userPass: string) => `Basic ${Buffer.from(userPass).toString("base64")}`

const makeRoot = () => {
  const root = tempDir("lis-gate-")
  mkdirSync(join(root, "streams", "v1"), { recursive: true })
  mkdirSync(join(root, "images", "debian", "20240101_10:00"), { recursive: true })
  writeFileSync(join(root, "streams", "v1", "index.json"), '{"format":"index:1.0","index":{}}\n')
  writeFileSync(join(root, "images", "debian", "20240101_10:00", "file.bin"), "0123456789")
  writeFileSync(join(root, "index.html"), "<!doctype html><title>the page</title>\n")
  writeFileSync(join(root, "htpasswd"), `images:${sha512}\nold:${apr1}\n`)
  return root
}

type Answer = { readonly status: number; readonly body: string; readonly headers: Record<string, string> }

/** Runs `f` against the guarded app serving `root`, with every log line kept. */
const withGate = <A, E>(root: string, form: AccessForm, f: (get: (path: string, authorization?: string) => Effect.Effect<Answer>) => Effect.Effect<A, E>) => {
  const logs = captureLogs()
  return Effect.gen(function* () {
    const passwords = form === "path" ? undefined : yield* makePasswordCheck(join(root, "htpasswd"))
    yield* HttpServer.serveEffect(guard(gateRules(form, token), passwords)(staticApp(root)))
    const client = (yield* HttpClient.HttpClient).pipe(HttpClient.followRedirects(0))
    const get = (path: string, authorization?: string) =>
      client.execute(HttpClientRequest.get(path).pipe(authorization === undefined ? (r) => r : HttpClientRequest.setHeader("authorization", authorization))).pipe(
        Effect.flatMap((r) => Effect.map(r.text, (body) => ({ status: r.status, body, headers: r.headers as Record<string, string> }))),
        Effect.scoped,
        Effect.orDie
      )
    return { result: yield* f(get), lines: logs.lines }
  }).pipe(Effect.scoped, Effect.provide(NodeHttpServer.layerTest), Effect.provide(NodeContext.layer), Effect.provide(logs.layer))
}

const statuses = (get: (path: string, authorization?: string) => Effect.Effect<Answer>, paths: ReadonlyArray<string>, authorization?: string) =>
  Effect.forEach(paths, (p) => Effect.map(get(p, authorization), (r) => [p, r.status] as const))

const unprefixed = ["/", "/index.html", "/streams/v1/index.json", "/images/debian/20240101_10:00/file.bin", "/images/debian/20240101_10%3A00/file.bin"]

describe.skipIf(!haveTools("openssl"))("the private server's gate", () => {
  it.live("path: serves behind the token only, and answers everything else 404, even with a password", () =>
    withGate(makeRoot(), "path", (get) =>
      Effect.all({
        behind: statuses(get, unprefixed.map((p) => `/${token}${p}`)),
        without: statuses(get, unprefixed),
        withPassword: statuses(get, unprefixed, basic(`images:${password}`)),
        otherToken: statuses(get, [`/${token.slice(0, -1)}A/streams/v1/index.json`, `/${token}x/streams/v1/index.json`]),
        redirect: get(`/${token}`),
        page: get(`/${token}/`)
      })
    ).pipe(
      Effect.map(({ result }) => {
        for (const [p, status] of result.behind) expect([p, status]).toEqual([p, 200])
        for (const [p, status] of [...result.without, ...result.withPassword, ...result.otherToken]) expect([p, status]).toEqual([p, 404])
        expect([result.redirect.status, result.redirect.headers["location"]]).toEqual([301, `/${token}/`])
        expect([result.page.status, result.page.body]).toEqual([200, "<!doctype html><title>the page</title>\n"])
      })
    ))

  it.live("basic: 401 with a challenge without a user, with a wrong password, or an unknown user; the file with the right one", () =>
    withGate(makeRoot(), "basic", (get) =>
      Effect.all({
        none: get("/streams/v1/index.json"),
        wrong: statuses(get, unprefixed, basic("images:wrong")),
        unknown: get("/", basic(`nobody:${password}`)),
        token: get(`/${token}/streams/v1/index.json`),
        sha512: statuses(get, unprefixed, basic(`images:${password}`)),
        apr1: get("/images/debian/20240101_10:00/file.bin", basic(`old:${password}`)),
        newline: get("/", basic(`images:${password}\n`))
      })
    ).pipe(
      Effect.map(({ result }) => {
        expect([result.none.status, result.none.headers["www-authenticate"]]).toEqual([401, 'Basic realm="lxd-image-server", charset="UTF-8"'])
        for (const [p, status] of result.wrong) expect([p, status]).toEqual([p, 401])
        expect([result.unknown.status, result.token.status, result.newline.status]).toEqual([401, 401, 401])
        for (const [p, status] of result.sha512) expect([p, status]).toEqual([p, 200])
        expect([result.apr1.status, result.apr1.body]).toEqual([200, "0123456789"])
      })
    ))

  it.live("both: the token needs no password, and without it a password is asked for", () =>
    withGate(makeRoot(), "both", (get) =>
      Effect.all({
        token: statuses(get, unprefixed.map((p) => `/${token}${p}`)),
        password: statuses(get, unprefixed, basic(`images:${password}`)),
        none: statuses(get, unprefixed)
      })
    ).pipe(
      Effect.map(({ result }) => {
        for (const [p, status] of [...result.token, ...result.password]) expect([p, status]).toEqual([p, 200])
        for (const [p, status] of result.none) expect([p, status]).toEqual([p, 401])
      })
    ))

  it.live("checks a header once: the answer is kept, right or wrong", () =>
    withGate(makeRoot(), "basic", (get) =>
      Effect.forEach([1, 2, 3], () => Effect.all([get("/", basic("images:wrong")), get("/", basic(`images:${password}`))]))
    ).pipe(
      Effect.map(({ result, lines }) => {
        expect(result.map(([wrong, right]) => [wrong.status, right.status])).toEqual([[401, 200], [401, 200], [401, 200]])
        expect(lines.filter((l) => l.includes("wrong password"))).toEqual(["WARN wrong password for user images"])
      })
    ))

  it.live("reads the htpasswd file again when it changes: a user taken out is refused, a bad file lets nobody in", () => {
    const root = makeRoot()
    const replace = (text: string) => {
      writeFileSync(join(root, "htpasswd.new"), text)
      renameSync(join(root, "htpasswd.new"), join(root, "htpasswd"))
    }
    return withGate(root, "basic", (get) =>
      Effect.gen(function* () {
        const before = [(yield* get("/", basic(`images:${password}`))).status, (yield* get("/", basic(`old:${password}`))).status]
        replace(`old:${apr1}\n`)
        const removed = [(yield* get("/", basic(`images:${password}`))).status, (yield* get("/", basic(`old:${password}`))).status]
        replace(`old:{SHA}qZk+NkcGgWq6PiVxeFDCbJzQ2J0=\n`)
        const bad = (yield* get("/", basic(`old:${password}`))).status
        replace(`old:${apr1}\n`)
        const mended = (yield* get("/", basic(`old:${password}`))).status
        return { before, removed, bad, mended }
      })
    ).pipe(
      Effect.map(({ result, lines }) => {
        expect(result).toEqual({ before: [200, 200], removed: [401, 200], bad: 401, mended: 200 })
        expect(lines.filter((l) => l.startsWith("ERROR"))).toEqual([
          `ERROR ${join(root, "htpasswd")}: line 1: user old: {SHA} hashes are not supported (make one with \`openssl passwd -6\`, or -5, -apr1); no password is accepted until it is mended`
        ])
      })
    )
  })
})
