/**
 * `update`, the safeguard: scan the images folder, read and check each version's metadata, hash every file
 * on the worker pool, and write the catalog, through the same Publisher and shell as the service, with no
 * memory of earlier runs (everything is hashed again) and a settle window of zero.
 */
import { FileSystem, Path } from "@effect/platform"
import { Chunk, Clock, Data, Effect, Fiber, Queue } from "effect"
import { Generations } from "../publish/Generations.js"
import { Progress } from "../progress/Progress.js"
import { makePublishShell, planTotals } from "../publish/PublishShell.js"
import { Publisher } from "../publish/Publisher.js"
import { versionKeyOf } from "../tree/VersionKey.js"
import type { Compat } from "../simplestreams/Compat.js"
import { Scanner } from "../tree/Scanner.js"
import { readWithdrawals } from "../retention/WithdrawalLog.js"
import { catalogVersionDirs } from "./Catalog.js"
import { CatalogStore } from "./CatalogStore.js"
import { CatalogText } from "./CatalogText.js"
import { VersionHasher } from "./VersionHasher.js"
import type { FoundPlan } from "../tree/Scanner.js"
import { WriterLock } from "./WriterLock.js"
import type { PageSite } from "../page/CatalogPage.js"
import { makePageWriter, webRootOf } from "../page/PageWriter.js"

export interface IndexerOptions {
  readonly imagesDir: string
  readonly streamsDir: string
  readonly compat: Compat
  /** Write the catalog page (`index.html` at the web root) after the catalog, saying this of the server. */
  readonly page?: PageSite | undefined
}

/** The folders given cannot make a catalog clients can read. */
export class FoldersError extends Data.TaggedError("FoldersError")<{ readonly reason: string }> {
  override get message() {
    return this.reason
  }
}

/** Versions whose metadata is read in one go while the scan goes on: one xz batch (Metadata reads 1,000 at once). */
const prefetchBatch = 1000

export interface RebuildSummary {
  readonly products: number
  readonly versions: number
  readonly refused: number
  readonly millis: number
  /** Nothing was written: the catalog would not have listed the version folder it had to (`mustList`). */
  readonly held: boolean
}

export class Indexer extends Effect.Service<Indexer>()("lxd-image-server/Indexer", {
  effect: Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const scanner = yield* Scanner
    const versions = yield* VersionHasher
    const store = yield* CatalogStore
    const lock = yield* WriterLock
    const context = yield* Effect.context<Scanner | CatalogStore | Generations | VersionHasher>()

    /**
     * Clients fetch `<remote>/streams/v1/index.json` and resolve every item path against the remote URL, so the
     * streams folder must end in `streams/v1` and the images folder must sit under the folder above `streams`.
     * Returns the images folder relative to that web root, as item paths begin.
     */
    const imagesPathFor = (options: IndexerOptions) =>
      Effect.gen(function* () {
        const streamsDir = path.resolve(options.streamsDir)
        if (path.basename(streamsDir) !== "v1" || path.basename(path.dirname(streamsDir)) !== "streams") {
          return yield* new FoldersError({
            reason: `streams folder ${streamsDir} must end in streams/v1: clients fetch <remote>/streams/v1/index.json`
          })
        }
        const webRoot = webRootOf(path, streamsDir)
        const resolve = (p: string) => fs.realPath(p).pipe(Effect.orElseSucceed(() => path.resolve(p)))
        const relative = path.relative(yield* resolve(webRoot), yield* resolve(options.imagesDir))
        if (relative === "" || relative.startsWith("..") || path.isAbsolute(relative)) {
          return yield* new FoldersError({
            reason: `images folder ${path.resolve(options.imagesDir)} must be inside ${webRoot}, the folder served as the remote (it holds streams/)`
          })
        }
        return relative.split(path.sep).join("/")
      })

    /**
     * Scans and hashes everything, then writes the catalog; the caller holds the writer lock. The versions
     * the state folder's withdrawals name stay out while they wait for deletion. `mustList` (add's version
     * folder): a catalog without it is not written at all.
     */
    const rebuildLocked = (options: IndexerOptions, stateDir?: string, mustList?: string) =>
      Effect.gen(function* () {
        const started = Date.now()
        const imagesDir = path.resolve(options.imagesDir)
        const imagesPath = yield* imagesPathFor(options)
        // every version is hashed: its metadata is read (xz, on another core) while the scan goes on, a batch
        // at a time
        const found = yield* Queue.unbounded<FoundPlan>()
        const prefetching = yield* Effect.forkScoped(
          Effect.forever(Effect.flatMap(Queue.takeBetween(found, prefetchBatch, prefetchBatch), (batch) => versions.prefetch(Chunk.toReadonlyArray(batch))))
        )
        const scanned = yield* scanner.scan(imagesDir, (plan) => {
          Queue.unsafeOffer(found, plan)
          // the workers start while the scan goes on, as soon as a version needs them
          if (!versions.isSmall(plan, options.compat)) versions.startWorkers()
        })
        // the last, smaller batch is read with the hashing
        yield* Fiber.interrupt(prefetching)
        yield* Effect.logDebug(`found ${scanned.plans.length} complete version folders under ${imagesDir}`)
        // of two versions with the same image, the one clients already know stays
        const current = yield* store.readImages(options.streamsDir)
        const incumbents = current._tag === "Some" ? catalogVersionDirs(current.value, imagesPath) : new Set<string>()
        const publisher = new Publisher({ compat: options.compat, imagesPath, settleMs: 0 }, undefined, incumbents)
        if (stateDir !== undefined) publisher.withhold(yield* readWithdrawals(stateDir))
        const text = new CatalogText()
        const shell = yield* makePublishShell(publisher, text, { imagesDir, streamsDir: options.streamsDir, onWriteFailure: "fail", writeOnlyListing: mustList })
        const progress = yield* Progress
        const totals = planTotals(scanned.plans)
        yield* progress.start(totals.files, totals.bytes)
        yield* shell.run(publisher.treeSeen(scanned.plans, scanned.refusals, yield* Clock.currentTimeMillis)).pipe(Effect.ensuring(progress.done()))
        if (mustList !== undefined && !publisher.catalogKeys().includes(mustList)) {
          yield* Effect.logDebug(`wrote no catalog: it would not list ${mustList}`)
          return { products: 0, versions: 0, refused: 0, millis: Date.now() - started, held: true } satisfies RebuildSummary
        }
        // an empty or wholly refused tree commits nothing, and still gets its (empty) catalog
        yield* store.write(options.streamsDir, text.files())
        if (options.page) {
          const page = yield* makePageWriter(webRootOf(path, options.streamsDir), options.page)
          // the catalog is written: a page that cannot be is said, and is no failure of update
          yield* page.write(text.snapshot()).pipe(Effect.catchAll((e) => Effect.logError(e.message)))
        }
        const status = publisher.status()
        const summary: RebuildSummary = {
          products: status.products,
          versions: status.versions,
          refused: status.refused.length + scanned.refusals.filter((r) => versionKeyOf(r.path) === undefined).length,
          millis: Date.now() - started,
          held: false
        }
        yield* Effect.logInfo(
          `wrote ${path.join(path.resolve(options.streamsDir), "index.json")}: ${summary.products} products, ${summary.versions} versions, ${summary.refused} refused, in ${(summary.millis / 1000).toFixed(2)} s`
        )
        return summary
      }).pipe(
        Effect.scoped,
        Effect.provide(context),
        Effect.provideService(FileSystem.FileSystem, fs),
        Effect.provideService(Path.Path, path)
      )

    /** `rebuildLocked`, holding the writer lock throughout. */
    const rebuild = (options: IndexerOptions, stateDir?: string) => rebuildLocked(options, stateDir).pipe(lock.withLock(options.streamsDir))

    return { rebuild, rebuildLocked, imagesPathFor } as const
  })
}) {}
