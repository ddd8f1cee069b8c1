/**
 * The orchestration: scan the images folder, read and check each version's metadata, hash every file on the
 * worker pool, build the catalog and write it. `rebuild` is `update`, the safeguard: it re-hashes everything.
 */
import { Path } from "@effect/platform"
import { Data, Effect } from "effect"
import type { Compat } from "../simplestreams/Compat.js"
import { sameArchitecture } from "../simplestreams/Architecture.js"
import { type Refusal, refusal, versionDir } from "../tree/Layout.js"
import { Metadata } from "../tree/Metadata.js"
import { type FoundFile, type FoundPlan, Scanner } from "../tree/Scanner.js"
import { buildCatalog, type HashedMetadata, type HashedRootfs, type HashedVersion, metadataSources } from "./Catalog.js"
import { Hasher } from "./Hasher.js"
import { StreamsStore } from "./StreamsStore.js"

export interface IndexerOptions {
  readonly imagesDir: string
  readonly streamsDir: string
  readonly compat: Compat
}

/** The folders given cannot make a catalog clients can read. */
export class FoldersError extends Data.TaggedError("FoldersError")<{ readonly reason: string }> {
  override get message() {
    return this.reason
  }
}

export interface RebuildSummary {
  readonly products: number
  readonly versions: number
  readonly refused: number
  readonly millis: number
}

export class Indexer extends Effect.Service<Indexer>()("lxd-image-server/Indexer", {
  effect: Effect.gen(function* () {
    const path = yield* Path.Path
    const scanner = yield* Scanner
    const metadata = yield* Metadata
    const hasher = yield* Hasher
    const store = yield* StreamsStore

    /**
     * Clients fetch `<remote>/streams/v1/index.json` and resolve every item path against the remote URL, so the
     * streams folder must end in `streams/v1` and the images folder must sit under the folder above `streams`.
     */
    const imagesPathFor = (options: IndexerOptions) =>
      Effect.gen(function* () {
        const streamsDir = path.resolve(options.streamsDir)
        if (path.basename(streamsDir) !== "v1" || path.basename(path.dirname(streamsDir)) !== "streams") {
          return yield* new FoldersError({
            reason: `streams folder ${streamsDir} must end in streams/v1: clients fetch <remote>/streams/v1/index.json`
          })
        }
        const webRoot = path.dirname(path.dirname(streamsDir))
        const relative = path.relative(webRoot, path.resolve(options.imagesDir))
        if (relative === "" || relative.startsWith("..") || path.isAbsolute(relative)) {
          return yield* new FoldersError({
            reason: `images folder ${path.resolve(options.imagesDir)} must be inside ${webRoot}, the folder served as the remote (it holds streams/)`
          })
        }
        return relative.split(path.sep).join("/")
      })

    const hashJob = (files: ReadonlyArray<FoundFile>) =>
      hasher.hashFiles(files.map((f) => f.path)).pipe(
        Effect.flatMap((result) => {
          const changed = files.find((f, i) => result.sizes[i] !== f.size)
          return changed
            ? Effect.fail(refusal(changed.name, "changed while being hashed (its size moved); try again when the upload is done"))
            : Effect.succeed(result.sha256)
        }),
        Effect.catchTag("HashError", (e) => Effect.fail(refusal(path.basename(e.path), e.reason)))
      )

    /** Reads the metadata and hashes one version; a failure is the version's refusal, never the run's. */
    const hashVersion = (plan: FoundPlan, compat: Compat): Effect.Effect<HashedVersion, Refusal> => {
      const dir = versionDir(plan.ref)
      const sources = metadataSources(compat, plan.metadata.map((m) => m.name))
      const used = plan.metadata.filter((m) => sources.some(([, file]) => file === m.name))
      const readMetadata = (file: (typeof used)[number]) =>
        Effect.gen(function* () {
          const info = yield* metadata.read(file.path).pipe(Effect.mapError((p) => refusal(file.name, p.reason)))
          if (!sameArchitecture(info.architecture, plan.ref.arch)) {
            return yield* Effect.fail(
              refusal(file.name, `metadata.yaml says architecture ${info.architecture}, but the folder says ${plan.ref.arch}`)
            )
          }
          const sha256 = yield* hashJob([file])
          return { name: file.name, size: file.size, sha256, metadata: info } satisfies HashedMetadata
        })
      const hashRootfs = (file: (typeof plan.rootfs)[number]) =>
        Effect.gen(function* () {
          const [sha256, ...combined] = yield* Effect.all(
            [hashJob([file]), ...used.map((meta) => hashJob([meta, file]))],
            { concurrency: "unbounded" }
          )
          return {
            name: file.name,
            ftype: file.ftype,
            size: file.size,
            sha256: sha256!,
            combined: Object.fromEntries(used.map((meta, i) => [meta.name, combined[i]!]))
          } satisfies HashedRootfs
        })
      // the metadata is read while the rootfs hashes run: the workers never wait for xz
      return Effect.all(
        [
          Effect.forEach(used, readMetadata, { concurrency: "unbounded" }),
          Effect.forEach(plan.rootfs, hashRootfs, { concurrency: "unbounded" })
        ],
        { concurrency: "unbounded" }
      ).pipe(
        Effect.map(([hashedMetadata, rootfs]): HashedVersion => ({ ref: plan.ref, metadata: hashedMetadata, rootfs })),
        Effect.mapError((r) => refusal(`${dir}/${r.path}`, r.reason))
      )
    }

    const logRefusal = (imagesDir: string, r: Refusal) =>
      Effect.logWarning(`refused ${path.join(imagesDir, r.path)}: ${r.reason}`)

    /** Scans and hashes everything, then writes the catalog. */
    const rebuild = (options: IndexerOptions) =>
      Effect.gen(function* () {
        const started = Date.now()
        const imagesDir = path.resolve(options.imagesDir)
        const scanned = yield* scanner.scan(imagesDir)
        const imagesPath = yield* imagesPathFor(options)
        yield* Effect.logDebug(`found ${scanned.plans.length} complete version folders under ${imagesDir}`)
        const results = yield* Effect.forEach(
          scanned.plans,
          (plan) => Effect.either(hashVersion(plan, options.compat)),
          { concurrency: hasher.workers + 2 }
        )
        const hashed = results.flatMap((r) => (r._tag === "Right" ? [r.right] : []))
        const catalog = buildCatalog(hashed, { compat: options.compat, imagesPath })
        const refusals = [...scanned.refusals, ...results.flatMap((r) => (r._tag === "Left" ? [r.left] : [])), ...catalog.refusals]
        yield* Effect.forEach(refusals, (r) => logRefusal(imagesDir, r), { discard: true })
        yield* store.write(options.streamsDir, catalog.images, catalog.index)
        const products = Object.values(catalog.images.products)
        const summary: RebuildSummary = {
          products: products.length,
          versions: products.reduce((n, p) => n + Object.keys(p.versions).length, 0),
          refused: refusals.length,
          millis: Date.now() - started
        }
        yield* Effect.logInfo(
          `wrote ${path.join(path.resolve(options.streamsDir), "index.json")}: ${summary.products} products, ${summary.versions} versions, ${summary.refused} refused, in ${(summary.millis / 1000).toFixed(1)} s`
        )
        return summary
      })

    return { rebuild } as const
  })
}) {}
