/**
 * Reading an upstream server over HTTPS, with Node's client: the catalog's JSON, and image files into a file,
 * resumed with a Range request where an earlier run left a part. The server's certificate is checked against the
 * one given (`--cert`: the upstream's own certificate, or its CA), else against the system's CAs. Every failure
 * is one line naming the URL and the reason.
 */
import { FileSystem } from "@effect/platform"
import * as NodeStream from "@effect/platform-node/NodeStream"
import { Data, Effect, type Scope, Stream } from "effect"
import { request as httpRequest, type IncomingMessage } from "node:http"
import { request as httpsRequest } from "node:https"
import { displayUrl } from "./Upstream.js"

export class UpstreamError extends Data.TaggedError("UpstreamError")<{
  readonly url: string
  readonly reason: string
  /** Worth trying again at once (a connection that broke), as opposed to an answer that will not change. */
  readonly transient: boolean
}> {
  override get message() {
    return `${displayUrl(this.url)}: ${this.reason}`
  }
}

/** Whom to believe about the server's certificate. */
export interface Trust {
  /** PEM text: the upstream's certificate or its CA; the system's CAs when undefined. */
  readonly ca?: string | undefined
  /** Where `ca` was read from, for messages. */
  readonly caFile?: string | undefined
}

/** The certificate file to trust cannot be used. */
export class TrustError extends Data.TaggedError("TrustError")<{ readonly path: string; readonly reason: string }> {
  override get message() {
    return `${this.path}: ${this.reason}`
  }
}

/** Trust in the PEM certificates of `file` (the upstream's own, or its CA); in the system's CAs without one. */
export const trustFrom = (file: string | undefined) =>
  Effect.gen(function* () {
    if (file === undefined) return {} satisfies Trust
    const fs = yield* FileSystem.FileSystem
    const pem = yield* fs.readFileString(file).pipe(Effect.mapError((e) => new TrustError({ path: file, reason: `cannot read: ${e.message}` })))
    if (!pem.includes("-----BEGIN CERTIFICATE-----")) return yield* new TrustError({ path: file, reason: "not a PEM certificate (-----BEGIN CERTIFICATE-----)" })
    return { ca: pem, caFile: file } satisfies Trust
  })

/** No byte for this long, while connecting or reading: the server is gone. */
const idleMs = 30_000
const maxRedirects = 5

const describeError = (e: NodeJS.ErrnoException, trust: Trust): { readonly reason: string; readonly transient: boolean } => {
  const code = e.code ?? ""
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") return { reason: `the server's certificate is not for this host name (${e.message})`, transient: false }
  if (/CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code)) {
    const by = trust.caFile !== undefined ? `the certificate in ${trust.caFile}` : "the system's certificate authorities (give --cert)"
    return { reason: `the server's certificate is not trusted by ${by}: ${e.message}`, transient: false }
  }
  if (code === "ECONNREFUSED") return { reason: "connection refused", transient: false }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return { reason: `unknown host (${code})`, transient: false }
  if (code === "ECONNRESET" || code === "EPIPE") return { reason: `the connection was reset (${code})`, transient: true }
  if (code === "EPROTO" || code.startsWith("ERR_SSL")) return { reason: `TLS failed: ${e.message}`, transient: false }
  return { reason: e.message || code || String(e), transient: code === "ETIMEDOUT" || code === "idle" }
}

/** One GET: the response, its body not read yet. Released (the socket closed) with the scope. */
const requestOnce = (url: URL, trust: Trust, headers: Readonly<Record<string, string>>) =>
  Effect.acquireRelease(
    Effect.async<IncomingMessage, UpstreamError>((resume) => {
      const send = url.protocol === "https:" ? httpsRequest : httpRequest
      const req = send(url, {
        method: "GET",
        headers: { "user-agent": "lxd-image-server", ...headers },
        ...(trust.ca !== undefined ? { ca: trust.ca } : {}),
        timeout: idleMs
      })
      let answered = false
      const answer = (e: Effect.Effect<IncomingMessage, UpstreamError>) => {
        if (answered) return
        answered = true
        resume(e)
      }
      req.once("response", (res) => answer(Effect.succeed(res)))
      req.on("timeout", () => req.destroy(Object.assign(new Error(`no answer for ${idleMs / 1000} s`), { code: "idle" })))
      req.on("error", (e: NodeJS.ErrnoException) => {
        const { reason, transient } = describeError(e, trust)
        answer(Effect.fail(new UpstreamError({ url: url.toString(), reason, transient })))
      })
      req.end()
      return Effect.sync(() => req.destroy())
    }),
    (res) => Effect.sync(() => res.destroy())
  )

/** A GET, following redirects as Go's client does: the final URL and its response. */
const open = (
  url: string,
  trust: Trust,
  headers: Readonly<Record<string, string>> = {}
): Effect.Effect<{ readonly url: string; readonly res: IncomingMessage }, UpstreamError, Scope.Scope> =>
  Effect.gen(function* () {
    let current = new URL(url)
    for (let hops = 0; ; hops++) {
      const res = yield* requestOnce(current, trust, headers)
      const status = res.statusCode ?? 0
      const location = res.headers.location
      if (status < 300 || status >= 400 || location === undefined) return { url: current.toString(), res }
      res.resume()
      if (hops >= maxRedirects) return yield* new UpstreamError({ url, reason: `more than ${maxRedirects} redirects`, transient: false })
      current = new URL(location, current)
    }
  })

const statusError = (url: string, res: IncomingMessage) =>
  new UpstreamError({
    url,
    reason: `HTTP ${res.statusCode}${res.statusMessage ? ` ${res.statusMessage}` : ""}`,
    // a server in trouble may answer next time; a missing file will not appear
    transient: (res.statusCode ?? 0) >= 500
  })

const bodyOf = (url: string, res: IncomingMessage, trust: Trust) =>
  NodeStream.fromReadable<UpstreamError, Uint8Array>(
    () => res,
    (e) => {
      // a transfer that breaks may go on from where it stopped
      const { reason } = describeError(e as NodeJS.ErrnoException, trust)
      return new UpstreamError({ url, reason: `the transfer broke: ${reason}`, transient: true })
    }
  )

/** The body of a GET as text, at most `maxBytes` (a catalog is JSON of a few MiB; more is not a catalog). */
export const getText = (url: string, trust: Trust, maxBytes = 512 * 1024 * 1024) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { url: final, res } = yield* open(url, trust)
      if (res.statusCode !== 200) return yield* statusError(final, res)
      const chunks: Array<Uint8Array> = []
      let size = 0
      yield* bodyOf(final, res, trust).pipe(
        Stream.runForEach((chunk) => {
          size += chunk.length
          if (size > maxBytes) return new UpstreamError({ url: final, reason: `more than ${maxBytes} bytes: not a catalog`, transient: false })
          chunks.push(chunk)
          return Effect.void
        })
      )
      return Buffer.concat(chunks).toString("utf8")
    })
  )

/**
 * Fetches `url` into `file` until it holds `size` bytes. A part left by an earlier run is continued with a Range
 * request (a server that ignores it sends the whole file again, which then replaces the part); a part longer
 * than `size` is dropped. `onBytes` hears of every byte the file gains, those found already there first. A
 * transfer that breaks leaves its part for the next try. Answers the bytes fetched now.
 */
export const download = (url: string, file: string, size: number, trust: Trust, onBytes: (bytes: number) => Effect.Effect<void>) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const have = yield* fs.stat(file).pipe(
      Effect.map((s) => Number(s.size)),
      Effect.orElseSucceed(() => 0)
    )
    if (have > size) yield* fs.remove(file)
    const from = have > size ? 0 : have
    if (from > 0) yield* onBytes(from)
    if (from === size) return 0
    return yield* Effect.scoped(
      Effect.gen(function* () {
        const { url: final, res } = yield* open(url, trust, from > 0 ? { range: `bytes=${from}-` } : {})
        const resumed = res.statusCode === 206 && (res.headers["content-range"] ?? "").startsWith(`bytes ${from}-`)
        if (!resumed && res.statusCode !== 200) return yield* statusError(final, res)
        const start = resumed ? from : 0
        if (!resumed && from > 0) yield* onBytes(-from)
        let got = 0
        yield* bodyOf(final, res, trust).pipe(
          // counted per batch of reads, not per read: an effect for every 16 KiB would cost more than the copy
          Stream.mapChunksEffect((chunks) => {
            let bytes = 0
            for (const chunk of chunks) bytes += chunk.length
            got += bytes
            if (start + got > size) {
              return Effect.fail(new UpstreamError({ url: final, reason: `more than the ${size} bytes the catalog says`, transient: false }))
            }
            return Effect.as(onBytes(bytes), chunks)
          }),
          Stream.run(fs.sink(file, { flag: resumed ? "a" : "w" })),
          Effect.catchTag("SystemError", "BadArgument", (e) => Effect.fail(new UpstreamError({ url: final, reason: `cannot write ${file}: ${e.message}`, transient: false })))
        )
        if (start + got < size) {
          return yield* new UpstreamError({ url: final, reason: `the transfer ended after ${start + got} of ${size} bytes`, transient: true })
        }
        return got
      })
    )
  }).pipe(
    Effect.catchTag("SystemError", "BadArgument", (e) => Effect.fail(new UpstreamError({ url, reason: `cannot write ${file}: ${e.message}`, transient: false })))
  )

