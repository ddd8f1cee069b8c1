/**
 * The embedded HTTPS server of `serve`, on @effect/platform's HTTP server: GET and HEAD of the files under the
 * root's images/ and streams/ and of the catalog page at `/`, with Content-Length, Range (206), content types, TLS 1.2+ only, no listings, no
 * path traversal and nothing outside those two, symlinks included. nginx is for production; this is the
 * one-command default.
 */
import { HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type { Server } from "node:http"
import { createServer } from "node:https"
import { constants } from "node:fs"
import { open, readFile, realpath } from "node:fs/promises"
import { join, relative, sep } from "node:path"
import { Data, Effect, Layer } from "effect"
import { isWithin } from "../tree/Layout.js"
import { countResponses, type HealthEndpoints, withHealthRoutes } from "./HealthRoutes.js"
import { contentType, isServedPath, openFailureStatus, pagePath, parseRange, requestedPath } from "./StaticFiles.js"

export interface ServeOptions {
  readonly rootDir: string
  readonly host: string
  readonly port: number
  readonly cert: string
  readonly key: string
  /** `/healthz`, `/readyz`, `/metrics` and the count of responses; none when absent. */
  readonly health?: HealthEndpoints | undefined
}

const notFound = HttpServerResponse.text("not found\n", { status: 404 })

/** A file that could not be opened or examined; `code` is the errno code when there is one. */
class OpenFailure extends Data.TaggedError("OpenFailure")<{ readonly path: string; readonly code: string | undefined; readonly cause: unknown }> {}

const failedAt = (path: string) => (cause: unknown) =>
  new OpenFailure({ path, cause, code: typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string" ? cause.code : undefined })

/**
 * Opens the file `rel` names, in the request's scope: the handle is closed when the request is over, whether the
 * body was sent whole, cut short by the client, failed, or never read (HEAD, 416, an empty file). Undefined when
 * what was opened must not be served.
 */
const openServed = (rootDir: string, rel: string) =>
  Effect.gen(function* () {
    const realRoot = yield* Effect.tryPromise({ try: () => realpath(rootDir), catch: failedAt(rootDir) })
    const path = join(realRoot, rel)
    const handle = yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => open(path, constants.O_RDONLY | constants.O_NONBLOCK), catch: failedAt(path) }),
      // a failed close has nothing left to tell the client; the descriptor is gone either way
      (handle) => Effect.promise(() => handle.close().catch(() => undefined))
    )
    // open first, then look at what was opened: a symlink swapped in after a check cannot lead outside
    const opened = yield* Effect.tryPromise({ try: () => realpath(`/proc/self/fd/${handle.fd}`), catch: failedAt(path) })
    const info = yield* Effect.tryPromise({ try: () => handle.stat(), catch: failedAt(path) })
    // folders never list, and nothing outside images/ and streams/ (through a symlink or otherwise) is served
    const inside = isWithin(realRoot, opened, sep) && isServedPath(relative(realRoot, opened).split(sep).join("/"))
    return info.isFile() && inside ? { handle, real: opened, size: info.size, mtime: info.mtime } : undefined
  })

export const staticApp = (rootDir: string) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (request.method !== "GET" && request.method !== "HEAD") {
      return HttpServerResponse.text("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } })
    }
    const rel = requestedPath(new URL(request.url, "https://x").pathname)
    if (rel === undefined) return notFound
    const found = yield* openServed(rootDir, rel)
    if (!found) return notFound
    const headers: Record<string, string> = {
      "accept-ranges": "bytes",
      "content-type": contentType(found.real),
      "last-modified": found.mtime.toUTCString(),
      // the catalog and its page change with every generation: caches must ask again
      ...(rel.startsWith("streams/") || rel === pagePath ? { "cache-control": "no-cache" } : {})
    }
    const range = parseRange(request.headers["range"], found.size)
    if (range._tag === "Unsatisfiable") {
      return HttpServerResponse.empty({ status: 416, headers: { "content-range": `bytes */${found.size}` } })
    }
    const part = range._tag === "Part" ? range : { start: 0, end: found.size - 1 }
    const partHeaders = {
      ...headers,
      "content-length": String(part.end - part.start + 1),
      ...(range._tag === "Part" ? { "content-range": `bytes ${part.start}-${part.end}/${found.size}` } : {})
    }
    const status = range._tag === "Part" ? 206 : 200
    // no stream for a body that is never sent
    if (request.method === "HEAD" || found.size === 0) return HttpServerResponse.empty({ status, headers: partHeaders })
    // not HttpServerResponse.file: with a range, @effect/platform-node 0.108 sends one byte past its
    // Content-Length (it passes an exclusive end to createReadStream, whose end is inclusive). autoClose off:
    // the request's scope closes the handle (see openServed); a stream destroyed on abort closes it as well
    return HttpServerResponse.raw(found.handle.createReadStream({ start: part.start, end: part.end, autoClose: false }), { status, headers: partHeaders })
  }).pipe(
    Effect.catchTag("OpenFailure", (e) => {
      const status = openFailureStatus(e.code)
      if (status === 404) return Effect.succeed(notFound)
      return Effect.logError(`cannot serve ${e.path}: ${e.code ?? String(e.cause)}`).pipe(
        Effect.as(HttpServerResponse.text(status === 503 ? "service unavailable\n" : "internal server error\n", { status }))
      )
    })
  )

/** The server as a layer: it listens while the layer lives. `app` answers the requests: the static files by default. */
export const HttpsServerLive = (o: ServeOptions, app: ReturnType<typeof staticApp> = staticApp(o.rootDir)) =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const [cert, key] = yield* Effect.promise(() => Promise.all([readFile(o.cert), readFile(o.key)]))
      let server: ReturnType<typeof createServer> | undefined
      // closed before the server itself, whose close() would otherwise wait for every download in progress
      const dropConnections = Layer.scopedDiscard(Effect.addFinalizer(() => Effect.sync(() => server?.closeAllConnections())))
      const listening = Layer.effectDiscard(Effect.logInfo(`listening on https://${o.host}:${o.port}`))
      return Layer.mergeAll(HttpServer.serve(o.health ? withHealthRoutes(o.health, app) : app), dropConnections, listening).pipe(
        Layer.provide(
          NodeHttpServer.layer(() => {
            server = createServer({ cert, key, minVersion: "TLSv1.2" })
            if (o.health) countResponses(server, o.health.countResponse)
            return server as unknown as Server
          }, {
            port: o.port,
            host: o.host
          })
        )
      )
    })
  )
