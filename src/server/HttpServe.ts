/**
 * The embedded HTTPS server of `serve`, on @effect/platform's HTTP server: GET and HEAD of the files under the
 * root's images/ and streams/, with Content-Length, Range (206), content types, TLS 1.2+ only, no listings, no
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
import { Effect, Layer } from "effect"
import { isWithin } from "../tree/Layout.js"
import { contentType, isServedPath, parseRange, requestedPath } from "./StaticFiles.js"

export interface ServeOptions {
  readonly rootDir: string
  readonly host: string
  readonly port: number
  readonly cert: string
  readonly key: string
}

const notFound = HttpServerResponse.text("not found\n", { status: 404 })

export const staticApp = (rootDir: string) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (request.method !== "GET" && request.method !== "HEAD") {
      return HttpServerResponse.text("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } })
    }
    const rel = requestedPath(new URL(request.url, "https://x").pathname)
    if (rel === undefined) return notFound
    // open first, then look at what was opened: a symlink swapped in after a check cannot lead outside
    const found = yield* Effect.promise(async () => {
      const realRoot = await realpath(rootDir)
      const handle = await open(join(realRoot, rel), constants.O_RDONLY | constants.O_NONBLOCK).catch(() => undefined)
      if (!handle) return undefined
      const opened = await realpath(`/proc/self/fd/${handle.fd}`).catch(() => undefined)
      const info = await handle.stat().catch(() => undefined)
      const inside = opened !== undefined && isWithin(realRoot, opened, sep) && isServedPath(relative(realRoot, opened).split(sep).join("/"))
      if (!opened || !info?.isFile() || !inside) {
        await handle.close()
        return undefined
      }
      return { handle, real: opened, size: info.size, mtime: info.mtime }
    })
    // folders never list, and nothing outside images/ and streams/ (through a symlink or otherwise) is served
    if (!found) return notFound
    const close = Effect.promise(() => found.handle.close())
    const headers: Record<string, string> = {
      "accept-ranges": "bytes",
      "content-type": contentType(found.real),
      "last-modified": found.mtime.toUTCString(),
      ...(rel.startsWith("streams/") ? { "cache-control": "no-cache" } : {})
    }
    const range = parseRange(request.headers["range"], found.size)
    if (range._tag === "Unsatisfiable") {
      yield* close
      return HttpServerResponse.empty({ status: 416, headers: { "content-range": `bytes */${found.size}` } })
    }
    if (found.size === 0) {
      yield* close
      return HttpServerResponse.empty({ status: 200, headers: { ...headers, "content-length": "0" } })
    }
    const part = range._tag === "Part" ? range : { start: 0, end: found.size - 1 }
    // not HttpServerResponse.file: with a range, @effect/platform-node 0.108 sends one byte past its
    // Content-Length (it passes an exclusive end to createReadStream, whose end is inclusive)
    return HttpServerResponse.raw(found.handle.createReadStream({ start: part.start, end: part.end }), {
      status: range._tag === "Part" ? 206 : 200,
      headers: {
        ...headers,
        "content-length": String(part.end - part.start + 1),
        ...(range._tag === "Part" ? { "content-range": `bytes ${part.start}-${part.end}/${found.size}` } : {})
      }
    })
  }).pipe(Effect.catchAll(() => Effect.succeed(notFound)))

/** The server as a layer: it listens while the layer lives. */
export const HttpsServerLive = (o: ServeOptions) =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const [cert, key] = yield* Effect.promise(() => Promise.all([readFile(o.cert), readFile(o.key)]))
      let server: ReturnType<typeof createServer> | undefined
      // closed before the server itself, whose close() would otherwise wait for every download in progress
      const dropConnections = Layer.scopedDiscard(Effect.addFinalizer(() => Effect.sync(() => server?.closeAllConnections())))
      const listening = Layer.effectDiscard(Effect.logInfo(`listening on https://${o.host}:${o.port}`))
      return Layer.mergeAll(HttpServer.serve(staticApp(o.rootDir)), dropConnections, listening).pipe(
        Layer.provide(
          NodeHttpServer.layer(() => (server = createServer({ cert, key, minVersion: "TLSv1.2" })) as unknown as Server, {
            port: o.port,
            host: o.host
          })
        )
      )
    })
  )
