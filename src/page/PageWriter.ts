/**
 * Writes the catalog page, `index.html` at the web root (beside images/ and streams/), always after the catalog
 * it shows is in place, atomically (temp file, fsync, rename), and only when its bytes change. `update` writes it
 * once after the catalog; `watch` renders it in a fiber of its own, off the publish path, at most once per
 * interval, from a snapshot of the catalog text handed over after each write of images.json: a burst of
 * publishes costs one page, and a publish re-renders only the products it touched (see PageFragments).
 */
import { FileSystem, Path } from "@effect/platform"
import { Clock, Data, Duration, Effect, Option, Queue } from "effect"
import { productOfPiece } from "../indexer/CatalogText.js"
import { certificateFiles, isSelfSigned, serverUrl, subjectNames } from "../server/Tls.js"
import type { Compat } from "../simplestreams/Compat.js"
import { removeStaleTemps, writeFileAtomic } from "../indexer/AtomicFile.js"
import { clientsOf, PageFragments, type PageSite } from "./CatalogPage.js"
import { type AccessForm, pageRemote } from "../server/PrivateAccess.js"

export const pageFileName = "index.html"

/** Each product's piece of images.json, in catalog order (CatalogText.snapshot). */
export type CatalogSnapshot = ReadonlyArray<readonly [string, Buffer]>

export class PageWriteError extends Data.TaggedError("PageWriteError")<{ readonly path: string; readonly reason: string }> {
  override get message() {
    return `cannot write the catalog page ${this.path}: ${this.reason}`
  }
}

/** The web root of a streams folder (`<root>/streams/v1`): where the remote URL points, and the page goes. */
export const webRootOf = (path: Path.Path, streamsDir: string) => path.dirname(path.dirname(path.resolve(streamsDir)))

/**
 * What the page says about the server: the URL (`public_url`, else https://<first hostname>[:port]; a private
 * server's as PrivateAccess.pageRemote makes it), and the certificate to pin when the one in the ssl folder
 * signed itself. A certificate that cannot be read is taken for one clients trust (a proxy's, say): no pin is
 * shown.
 */
export const pageSite = (o: {
  readonly publicUrl: string
  readonly hostnames: ReadonlyArray<string>
  readonly port: number
  readonly sslDir: string
  readonly compat: Compat
  readonly private?: { readonly form: AccessForm; readonly token: string | undefined } | undefined
}) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const pem = yield* fs.readFileString(certificateFiles(path, o.sslDir).cert).pipe(Effect.option)
    const base = o.publicUrl !== "" ? o.publicUrl : serverUrl(subjectNames(o.hostnames)[0]!, o.port)
    return {
      ...(o.private === undefined ? { url: base } : pageRemote(base, o.private.form, o.private.token)),
      remote: "myimages",
      clients: clientsOf(o.compat),
      selfSignedPem: Option.isSome(pem) && isSelfSigned(pem.value) ? pem.value : undefined
    } satisfies PageSite
  })

/** Renders and writes the page of a catalog snapshot; returns whether the file changed. */
export const makePageWriter = (webRoot: string, site: PageSite) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const target = path.join(webRoot, pageFileName)
    const fragments = new PageFragments()
    /** What the file holds: a restart that renders the same page writes nothing. */
    let written = Option.getOrUndefined(yield* fs.readFile(target).pipe(Effect.option))
    const write = (snapshot: CatalogSnapshot) =>
      Effect.gen(function* () {
        const html = fragments.render(site, snapshot, productOfPiece)
        if (written !== undefined && html.equals(written)) return false
        yield* writeFileAtomic(target, html).pipe(
          Effect.mapError((e) => new PageWriteError({ path: target, reason: e.message })),
          Effect.provideService(FileSystem.FileSystem, fs),
          Effect.provideService(Path.Path, path)
        )
        written = html
        return true
      })
    return { write, target } as const
  })

/**
 * The page writer of `watch`, in a fiber of the scope: `request` hands it the catalog as just written; it waits
 * `every`, then renders the newest snapshot it was handed, so it renders at most once per `every`. A failed
 * write is logged once per streak and never stops the service; the next request tries again.
 */
export const startPageWriter = (webRoot: string, site: PageSite, every: Duration.DurationInput) =>
  Effect.gen(function* () {
    yield* removeStaleTemps(webRoot, [pageFileName])
    const writer = yield* makePageWriter(webRoot, site)
    const wanted = yield* Queue.sliding<CatalogSnapshot>(1)
    let failing = false
    const once = Effect.gen(function* () {
      const first = yield* Queue.take(wanted)
      yield* Effect.sleep(every)
      const snapshot = Option.getOrElse(yield* Queue.poll(wanted), () => first)
      const started = yield* Clock.currentTimeMillis
      const wrote = yield* Effect.either(writer.write(snapshot))
      if (wrote._tag === "Left") {
        if (!failing) yield* Effect.logError(`${wrote.left.message}; tried again at the next change`)
        failing = true
        return
      }
      failing = false
      if (wrote.right) {
        yield* Effect.logDebug(`wrote ${writer.target} (${snapshot.length} products) in ${(yield* Clock.currentTimeMillis) - started} ms`)
      }
    })
    yield* Effect.forkScoped(Effect.forever(once))
    return { request: (snapshot: CatalogSnapshot) => Queue.offer(wanted, snapshot).pipe(Effect.asVoid) } as const
  })
