/**
 * `serve`'s health endpoints, answered before anything else the server does and without any secret: a probe
 * or a Prometheus server knows no token. `/healthz`: the process answers. `/readyz`: 200 when the catalog is
 * written and current, else 503 with the reason (see Readiness.ts). `/metrics`: the Prometheus text format.
 * None of them touches the images or the catalog's files, so they tell nothing a client could not learn.
 */
import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { IncomingMessage, ServerResponse } from "node:http"
import { Effect } from "effect"
import type { Readiness } from "../health/Readiness.js"

export interface HealthEndpoints {
  readonly ready: Effect.Effect<Readiness>
  readonly metrics: Effect.Effect<string>
  readonly metricsContentType: string
  /** A response ended: its status and the bytes of body sent (see countResponses). */
  readonly countResponse: (status: number, bytes: number) => void
}

export const healthPaths: ReadonlySet<string> = new Set(["/healthz", "/readyz", "/metrics"])

const noStore = { "cache-control": "no-store" }

/** `app`, with the health endpoints in front of it. */
export const withHealthRoutes = <E, R>(health: HealthEndpoints, app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const pathname = new URL(request.url, "https://x").pathname
    if (!healthPaths.has(pathname)) return yield* app
    if (request.method !== "GET" && request.method !== "HEAD") {
      return HttpServerResponse.text("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } })
    }
    if (pathname === "/healthz") return HttpServerResponse.text("ok\n", { headers: noStore })
    if (pathname === "/readyz") {
      const r = yield* health.ready
      return HttpServerResponse.text(`${r.reason}\n`, { status: r.ready ? 200 : 503, headers: noStore })
    }
    return HttpServerResponse.text(yield* health.metrics, { headers: { ...noStore, "content-type": health.metricsContentType } })
  })

const byteLength = (chunk: unknown, encoding: unknown): number =>
  typeof chunk === "string" ? Buffer.byteLength(chunk, typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8") : chunk instanceof Uint8Array ? chunk.byteLength : 0

/**
 * Tells `count` of every response the server ends, finished or cut short: its status and the bytes of body
 * handed to the connection (the server writes bodies through `write` and `end`; HEAD sends none).
 */
export const countResponses = (
  server: { on(event: "request", listener: (req: IncomingMessage, res: ServerResponse) => void): unknown },
  count: (status: number, bytes: number) => void
) =>
  server.on("request", (req, res) => {
    let bytes = 0
    const write = res.write
    const end = res.end
    res.write = function (this: ServerResponse, chunk: unknown, ...rest: Array<unknown>) {
      bytes += byteLength(chunk, rest[0])
      return (write as (...a: Array<unknown>) => boolean).call(this, chunk, ...rest)
    } as typeof res.write
    res.end = function (this: ServerResponse, chunk?: unknown, ...rest: Array<unknown>) {
      if (typeof chunk !== "function") bytes += byteLength(chunk, rest[0])
      return (end as (...a: Array<unknown>) => ServerResponse).call(this, chunk, ...rest)
    } as typeof res.end
    res.once("close", () => count(res.statusCode, req.method === "HEAD" ? 0 : bytes))
  })
