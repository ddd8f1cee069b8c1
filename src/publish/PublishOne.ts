/**
 * Publishes one version folder (what `add` placed), under the writer lock its caller holds. The catalog as
 * written (images.json) is the base: only the new version is read and hashed, through the same Publisher and
 * shell as `watch`, and only its product is rendered again, so the cost does not grow with the tree. Where
 * that could give another catalog than `update` would (aliases changing hands, a catalog that does not read
 * back, no catalog yet), the whole catalog is rebuilt instead, as `update` does.
 *
 * Not through `watch`'s journal: it is the service's own memory, kept in its process and compacted by it, and
 * missing where no service runs; a running `watch` sees images.json written by another process, reconciles,
 * and arrives at the same catalog.
 */
import { FileSystem, Path } from "@effect/platform"
import { Clock, Effect, Either, Option } from "effect"
import type { HashedVersion } from "../indexer/Catalog.js"
import { CatalogText } from "../indexer/CatalogText.js"
import { Indexer, type IndexerOptions } from "../indexer/Indexer.js"
import { makePageWriter, webRootOf } from "../page/PageWriter.js"
import type { Images } from "../simplestreams/Streams.js"
import type { ImageMetadata } from "../tree/MetadataRules.js"
import { readWithdrawals } from "../retention/WithdrawalLog.js"
import { productKey } from "../tree/Layout.js"
import { Scanner } from "../tree/Scanner.js"
import { asWrittenCatalog, type OneVersionRoute, routeFor, versionsOfCatalog } from "./CatalogBase.js"
import { makePublishShell } from "./PublishShell.js"
import { filesOf, Publisher, type Remembered } from "./Publisher.js"

export type PublishOneOutcome =
  | {
      readonly _tag: "Published"
      /** The version as published (its files' sha256 and sizes). */
      readonly version: HashedVersion
      /** Its product was rendered again alone, or the whole catalog was rebuilt (and why). */
      readonly route: OneVersionRoute
      /** It is the newest version of its product: its image.yaml names the product. */
      readonly newest: boolean
    }
  | { readonly _tag: "Refused"; readonly reason: string }

/** The version with the metadata.yaml it was made from: what reading it back from the catalog cannot give. */
const withMetadata = (version: HashedVersion, metadata: ImageMetadata): HashedVersion => ({
  ...version,
  metadata: version.metadata.map((m) => ({ ...m, metadata })),
  ...(version.unified ? { unified: { ...version.unified, metadata } } : {})
})

const parseJson = (bytes: Uint8Array): Either.Either<unknown, string> =>
  Either.try({ try: () => JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")) as unknown, catch: () => "not JSON" })

/**
 * images.json as it was written, parsed, when it has the shape this program writes: its Schema was checked when
 * it was written, and checking it again takes longer than publishing a version (0.3 s at 10,000 versions).
 */
export const readWrittenCatalog = (streamsDir: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const bytes = yield* fs.readFile(path.join(streamsDir, "images.json")).pipe(Effect.option)
    return Option.flatMap(bytes, (b) => Option.map(Either.getRight(Either.flatMap(parseJson(b), asWrittenCatalog)), (images) => ({ bytes: b, images })))
  })

/** The version is the newest of its product in this catalog (or its product's only one). */
const newestOf = (images: Images, version: HashedVersion) =>
  Object.keys(images.products[productKey(version.ref)]?.versions ?? {}).every((v) => v <= version.ref.version)

/**
 * Publishes the version folder `key` (relative to the images folder). `known`: the version is listed already
 * with the same bytes, made from this metadata.yaml; it is published again (its image.yaml changed) without
 * reading its files.
 */
export const publishOne = (options: IndexerOptions, stateDir: string, key: string, known?: ImageMetadata) =>
  Effect.gen(function* () {
    const path = yield* Path.Path
    const indexer = yield* Indexer
    const scanner = yield* Scanner
    const imagesDir = path.resolve(options.imagesDir)
    const imagesPath = yield* indexer.imagesPathFor(options)
    const scanned = yield* scanner.scanVersion(imagesDir, key)
    if (scanned._tag === "Absent") return { _tag: "Refused", reason: "it is not a version folder" } as PublishOneOutcome
    if (scanned._tag === "Refused") return { _tag: "Refused", reason: `${scanned.refusal.path}: ${scanned.refusal.reason}` } as PublishOneOutcome
    const plan = scanned.plan
    const baseOptions = { compat: options.compat, imagesPath }

    const written = yield* readWrittenCatalog(options.streamsDir)
    const current = Option.map(written, (w) => w.images)
    const base = Option.isNone(current) ? Either.left("no readable images.json yet") : versionsOfCatalog(current.value, baseOptions)
    const route = Either.isLeft(base) ? { _tag: "Rebuild" as const, reason: base.left } : routeFor(Option.getOrThrow(current), base.right, plan, baseOptions)

    // a version `prune` or `remove` withdrew stays out while its files wait for deletion, as `update` leaves it
    const withdrawals = yield* readWithdrawals(stateDir)
    const withdrawn = "it was withdrawn (by prune or remove), and its files wait for deletion"

    if (route._tag === "Rebuild") {
      yield* Effect.logDebug(`publishing ${key} with the whole catalog: ${route.reason}`)
      // a refused version writes no catalog: nothing else changes (other versions not published yet stay so)
      const rebuilt = yield* indexer.rebuildLocked(options, stateDir, key)
      if (rebuilt.held) return { _tag: "Refused", reason: withdrawals.has(key) ? withdrawn : "it was refused (the warning above says why)" } as PublishOneOutcome
      const after = Option.map(yield* readWrittenCatalog(options.streamsDir), (w) => w.images)
      const listed = Option.isSome(after) ? Either.getOrUndefined(versionsOfCatalog(after.value, baseOptions))?.get(key) : undefined
      if (!listed) return { _tag: "Refused", reason: withdrawals.has(key) ? withdrawn : "it was refused (the warning above says why)" } as PublishOneOutcome
      return { _tag: "Published", version: listed, route, newest: newestOf(Option.getOrThrow(after), listed) } as PublishOneOutcome
    }

    // the publisher starts from the catalog as written, as `watch` starts from its journal
    const images = Option.getOrThrow(current)
    const memory = new Map<string, Remembered>()
    for (const [k, version] of Either.getOrThrow(base)) memory.set(k, { _tag: "Hashed", files: [], version })
    const listed = memory.get(key)
    if (known && listed?._tag === "Hashed") memory.set(key, { _tag: "Hashed", files: filesOf(plan), version: withMetadata(listed.version, known) })
    const publisher = new Publisher({ compat: options.compat, imagesPath, settleMs: 0 }, { memory, catalog: [...memory.keys()], generation: 0 })
    // every product but the one published stays as written
    const text = CatalogText.fromWritten(Option.getOrThrow(written).bytes, Object.keys(images.products)) ?? new CatalogText()
    if (text.size === 0) for (const [pk, product] of Object.entries(images.products)) text.setProduct(pk, product, { checked: true })
    const shell = yield* makePublishShell(publisher, text, { imagesDir, streamsDir: options.streamsDir, onWriteFailure: "fail" })
    yield* shell.run([...publisher.withhold(withdrawals), ...publisher.seen(key, scanned, yield* Clock.currentTimeMillis)])

    const remembered = publisher.remembered(key)
    if (remembered?._tag === "Refused") return { _tag: "Refused", reason: `${remembered.refusal.path}: ${remembered.refusal.reason}` } as PublishOneOutcome
    if (remembered === undefined || !publisher.catalogKeys().includes(key)) {
      const why = withdrawals.has(key) ? withdrawn : publisher.status().refused.find((r) => r.path === key)?.reason
      return { _tag: "Refused", reason: why ?? "it was not published" } as PublishOneOutcome
    }
    if (options.page) {
      const page = yield* makePageWriter(webRootOf(path, options.streamsDir), options.page)
      // the catalog is written: a page that cannot be is said, and is no failure of add
      yield* page.write(text.snapshot()).pipe(Effect.catchAll((e) => Effect.logError(e.message)))
    }
    return { _tag: "Published", version: remembered.version, route, newest: newestOf(images, remembered.version) } as PublishOneOutcome
  })
