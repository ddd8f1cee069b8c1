/**
 * The orchestration: scan the images folder, read and check each version's metadata, hash every file on the
 * worker pool, build the catalog and write it. `rebuild` is `update`, the safeguard: it re-hashes everything.
 * `watch` uses the same pieces, version by version, with a cache of hashes.
 */
import { FileSystem, Path } from "@effect/platform"
import { Data, Effect, Fiber } from "effect"
import { sameArchitecture } from "../simplestreams/Architecture.js"
import type { Compat } from "../simplestreams/Compat.js"
import { type Refusal, refusal, versionDir } from "../tree/Layout.js"
import { Metadata, type MetadataProblem } from "../tree/Metadata.js"
import type { ImageMetadata } from "../tree/MetadataRules.js"
import { type FoundFile, type FoundPlan, Scanner } from "../tree/Scanner.js"
import {
  buildCatalog,
  catalogVersionDirs,
  type HashedMetadata,
  type HashedRootfs,
  type HashedVersion,
  metadataSources
} from "./Catalog.js"
import { Hasher } from "./Hasher.js"
import { StreamsStore } from "./StreamsStore.js"
import { withWriterLock } from "./WriterLock.js"

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

/** How a version is hashed: one read per rootfs when files are many, split jobs to put every core on one. */
export interface HashPlan {
  readonly compat: Compat
  readonly onePass: boolean
  readonly readMetadata: (path: string) => Effect.Effect<ImageMetadata, MetadataProblem>
}

export class Indexer extends Effect.Service<Indexer>()("lxd-image-server/Indexer", {
  effect: Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const scanner = yield* Scanner
    const metadata = yield* Metadata
    const hasher = yield* Hasher
    const store = yield* StreamsStore

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
        const webRoot = path.dirname(path.dirname(streamsDir))
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
     * Both hashes of every rootfs: in one pass when there are rootfs files enough to keep every core busy,
     * else as separate jobs (own, and one per metadata file) so that one big image still uses every core.
     */
    const hashRootfs = (file: FoundFile, metas: ReadonlyArray<FoundFile>, onePass: boolean) =>
      (onePass
        ? hasher.hash({ file: file.path, heads: metas.map((m) => m.path), own: true })
        : Effect.all(
            [
              hasher.hash({ file: file.path, heads: [], own: true }),
              ...metas.map((m) => hasher.hash({ file: file.path, heads: [m.path], own: false }))
            ],
            { concurrency: "unbounded" }
          ).pipe(
            Effect.map(([own, ...perMeta]) => ({
              own: own!.own,
              size: own!.size,
              combined: perMeta.map((r) => r.combined[0]!),
              headShas: perMeta.map((r) => r.headShas[0]!),
              headSizes: perMeta.map((r) => r.headSizes[0]!)
            }))
          )
      ).pipe(Effect.catchTag("HashError", (e) => Effect.fail(refusal(path.basename(e.path), e.reason))))

    /** Reads the metadata and hashes one version; a failure is the version's refusal, never the run's. */
    const hashVersion = (plan: FoundPlan, how: HashPlan): Effect.Effect<HashedVersion, Refusal> => {
      const dir = versionDir(plan.ref)
      const sources = metadataSources(how.compat, plan.metadata.map((m) => m.name))
      const used = plan.metadata.filter((m) => sources.some(([, file]) => file === m.name))
      const checkedMetadata = (file: FoundFile) =>
        Effect.gen(function* () {
          const info = yield* how.readMetadata(file.path).pipe(Effect.mapError((p) => refusal(file.name, p.reason)))
          if (!sameArchitecture(info.architecture, plan.ref.arch)) {
            return yield* Effect.fail(
              refusal(file.name, `metadata.yaml says architecture ${info.architecture}, but the folder says ${plan.ref.arch}`)
            )
          }
          return info
        })
      // the metadata is read while the rootfs hashes run: the workers never wait for xz
      return Effect.all(
        [
          Effect.forEach(used, checkedMetadata, { concurrency: "unbounded" }),
          Effect.forEach(plan.rootfs, (file) => hashRootfs(file, used, how.onePass), { concurrency: "unbounded" })
        ],
        { concurrency: "unbounded" }
      ).pipe(
        Effect.flatMap(([infos, hashes]) => {
          // every read must have seen the sizes the scan saw, and every job the same metadata bytes
          const changed = [
            ...plan.rootfs.filter((f, i) => hashes[i]!.size !== f.size),
            ...used.filter((m, j) => hashes.some((h) => h.headSizes[j] !== m.size || h.headShas[j] !== hashes[0]!.headShas[j]))
          ]
          if (changed.length > 0) {
            return Effect.fail(refusal(changed[0]!.name, "changed while being hashed; it is tried again when it changes"))
          }
          const hashedMetadata = used.map(
            (m, j): HashedMetadata => ({ name: m.name, size: m.size, sha256: hashes[0]!.headShas[j]!, metadata: infos[j]! })
          )
          const rootfs = plan.rootfs.map(
            (f, i): HashedRootfs => ({
              name: f.name,
              ftype: f.ftype,
              size: f.size,
              sha256: hashes[i]!.own!,
              combined: Object.fromEntries(used.map((m, j) => [m.name, hashes[i]!.combined[j]!]))
            })
          )
          return Effect.succeed<HashedVersion>({ ref: plan.ref, metadata: hashedMetadata, rootfs })
        }),
        Effect.mapError((r) => refusal(`${dir}/${r.path}`, r.reason))
      )
    }

    /** A HashPlan for these plans: metadata read in batches ahead, one-pass hashing when files are many. */
    const hashPlanFor = (plans: ReadonlyArray<FoundPlan>, compat: Compat) =>
      Effect.gen(function* () {
        const paths = plans.flatMap((p) => p.metadata.map((m) => m.path))
        const all = yield* Effect.fork(metadata.readAll(paths))
        return {
          compat,
          onePass: plans.reduce((n, p) => n + p.rootfs.length, 0) >= hasher.workers,
          readMetadata: (p: string) => Fiber.join(all).pipe(Effect.flatMap((m) => m.get(p) ?? metadata.read(p)))
        } satisfies HashPlan
      })

    const logRefusal = (imagesDir: string, r: Refusal) =>
      Effect.logWarning(`refused ${path.join(imagesDir, r.path)}: ${r.reason}`)

    /** Builds the catalog of these versions and writes it; the catalog tells the duplicates it left out. */
    const publish = (
      options: IndexerOptions,
      imagesPath: string,
      versions: ReadonlyArray<HashedVersion>,
      incumbents: ReadonlySet<string> = new Set()
    ) =>
      Effect.gen(function* () {
        const catalog = buildCatalog(versions, { compat: options.compat, imagesPath, incumbents })
        yield* store.write(options.streamsDir, catalog.images, catalog.index)
        return { catalog }
      })

    /** Scans and hashes everything, then writes the catalog, holding the writer lock throughout. */
    const rebuild = (options: IndexerOptions) =>
      Effect.gen(function* () {
        const started = Date.now()
        const imagesDir = path.resolve(options.imagesDir)
        const scanned = yield* scanner.scan(imagesDir)
        const imagesPath = yield* imagesPathFor(options)
        yield* Effect.logDebug(`found ${scanned.plans.length} complete version folders under ${imagesDir}`)
        const how = yield* hashPlanFor(scanned.plans, options.compat)
        const results = yield* Effect.forEach(scanned.plans, (plan) => Effect.either(hashVersion(plan, how)), {
          concurrency: hasher.workers + 2
        })
        const hashed = results.flatMap((r) => (r._tag === "Right" ? [r.right] : []))
        // of two versions with the same image, the one clients already know stays
        const current = yield* store.readImages(options.streamsDir)
        const incumbents = current._tag === "Some" ? catalogVersionDirs(current.value, imagesPath) : new Set<string>()
        const { catalog } = yield* publish(options, imagesPath, hashed, incumbents)
        const refusals = [
          ...scanned.refusals,
          ...results.flatMap((r) => (r._tag === "Left" ? [r.left] : [])),
          ...catalog.refusals
        ]
        yield* Effect.forEach(refusals, (r) => logRefusal(imagesDir, r), { discard: true })
        yield* Effect.forEach(catalog.aliasClashes, (c) => Effect.logWarning(c), { discard: true })
        const products = Object.values(catalog.images.products)
        const summary: RebuildSummary = {
          products: products.length,
          versions: products.reduce((n, p) => n + Object.keys(p.versions).length, 0),
          refused: refusals.length,
          millis: Date.now() - started
        }
        yield* Effect.logInfo(
          `wrote ${path.join(path.resolve(options.streamsDir), "index.json")}: ${summary.products} products, ${summary.versions} versions, ${summary.refused} refused, in ${(summary.millis / 1000).toFixed(2)} s`
        )
        return summary
      }).pipe(
        withWriterLock(options.streamsDir),
        Effect.provideService(FileSystem.FileSystem, fs),
        Effect.provideService(Path.Path, path)
      )

    return { rebuild, publish, hashVersion, hashPlanFor, imagesPathFor, logRefusal } as const
  })
}) {}
