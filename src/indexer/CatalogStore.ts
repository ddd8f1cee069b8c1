/**
 * Where the catalog is stored: `images.json` and `index.json` in the streams folder. This is the local-folder
 * store; another (object storage, say) can replace the service. Each file is written to a temp file in the
 * same folder, fsynced and renamed over the old one, in an order that never lets a reader see a torn file or an
 * index naming a product the catalog lacks. The text comes validated from
 * CatalogText; a file whose bytes would not change is left alone.
 */
import { FileSystem, Path } from "@effect/platform"
import { stat } from "node:fs/promises"
import { Data, Effect, Option, Schema } from "effect"
import { canonicalJson, Images } from "../simplestreams/Streams.js"
import { indexedProducts, indexOf } from "./CatalogText.js"
import { removeStaleTemps as removeTemps, writeFileAtomic } from "./AtomicFile.js"
import { type FileIdentity, sameIdentity } from "../tree/Identity.js"
import { identityNow } from "../tree/IdentityNow.js"

export class StreamsWriteError extends Data.TaggedError("StreamsWriteError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `cannot write ${this.path}: ${this.reason}`
  }
}

/** The bytes of both files (UTF-8 JSON); images.json may come in pieces, written one after the other. */
export interface CatalogFiles {
  readonly images: Uint8Array | ReadonlyArray<Uint8Array>
  readonly index: Uint8Array
}

type Chunks = ReadonlyArray<Uint8Array>

const chunksOf = (bytes: Uint8Array | Chunks): Chunks => (bytes instanceof Uint8Array ? [bytes] : bytes)

const lengthOf = (chunks: Chunks) => chunks.reduce((n, c) => n + c.byteLength, 0)

/**
 * The same bytes, however they are cut, compared in place: no joined copy. Pieces that are the same objects
 * (a product that did not change) are equal without a look at their bytes.
 */
export const sameBytes = (a: Uint8Array | Chunks | undefined, b: Uint8Array | Chunks): boolean => {
  if (a === undefined) return false
  const x = chunksOf(a)
  const y = chunksOf(b)
  if (lengthOf(x) !== lengthOf(y)) return false
  let i = 0, j = 0, oi = 0, oj = 0
  while (i < x.length && j < y.length) {
    const cx = x[i]!, cy = y[j]!
    if (cx === cy && oi === 0 && oj === 0) {
      i++, j++
      continue
    }
    const n = Math.min(cx.byteLength - oi, cy.byteLength - oj)
    if (Buffer.compare(cx.subarray(oi, oi + n), cy.subarray(oj, oj + n)) !== 0) return false
    oi += n, oj += n
    if (oi === cx.byteLength) i++, oi = 0
    if (oj === cy.byteLength) j++, oj = 0
  }
  return true
}

export interface WriteOptions {
  /** Compare with the files on disk rather than with what this process wrote last (after another writer). */
  readonly checkDisk?: boolean | undefined
  /**
   * With `checkDisk`: images.json holds these bytes for as long as it is this very file (a restart's text, cut
   * from it), so it is not read again (100,000 versions: 116 MB).
   */
  readonly imagesKnown?: { readonly file: FileIdentity; readonly bytes: Chunks } | undefined
}

export class CatalogStore extends Effect.Service<CatalogStore>()("lxd-image-server/CatalogStore", {
  effect: Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    /** What this process last wrote (or found) in each streams folder: no need to read 10 MB to compare. */
    const known = new Map<string, CatalogFiles>()

    const writeAtomic = (target: string, text: Uint8Array | Chunks) =>
      writeFileAtomic(target, text).pipe(
        Effect.mapError((e) => new StreamsWriteError({ path: target, reason: e.message })),
        Effect.provideService(FileSystem.FileSystem, fs),
        Effect.provideService(Path.Path, path)
      )

    const readBytes = (file: string) => fs.readFile(file).pipe(Effect.option, Effect.map(Option.getOrUndefined))

    /** images.json's bytes: those the caller knows it holds while it is the same file, else read. */
    const imagesOnDisk = (file: string, ifSame: WriteOptions["imagesKnown"]) =>
      Effect.suspend((): Effect.Effect<Uint8Array | Chunks | undefined> => {
        const now = ifSame && identityNow(file, ifSame.file.name)
        return now && sameIdentity(now, ifSame.file) ? Effect.succeed(ifSame.bytes) : readBytes(file)
      })

    /**
     * Writes both files, images.json first. Uninterruptible: a stop request waits for the renames, so both
     * files stay whole and agree. `checkDisk` compares with the files on disk rather than with what this
     * process wrote last (after another writer). Returns whether anything was written.
     */
    const write = (streamsDir: string, files: CatalogFiles, options: WriteOptions = {}) =>
      Effect.gen(function* () {
        const imagesPath = path.join(streamsDir, "images.json")
        const indexPath = path.join(streamsDir, "index.json")
        const before = options.checkDisk ? undefined : known.get(streamsDir)
        const onDisk = before ?? { images: yield* imagesOnDisk(imagesPath, options.imagesKnown), index: yield* readBytes(indexPath) }
        yield* fs
          .makeDirectory(streamsDir, { recursive: true })
          .pipe(Effect.mapError((e) => new StreamsWriteError({ path: streamsDir, reason: e.message })))
        const sameImages = sameBytes(onDisk.images, files.images)
        const sameIndex = sameBytes(onDisk.index, files.index)
        // what is on disk is unknown after a failed write: compare with the disk next time
        known.delete(streamsDir)
        // index.json never names a product images.json lacks: products leaving are first taken out of the
        // index, then images.json is replaced, then the index names the products arriving
        const listed = indexedProducts(onDisk.index)
        const staying = new Set(indexedProducts(files.index))
        if (!sameImages && listed.some((k) => !staying.has(k))) {
          yield* writeAtomic(indexPath, Buffer.from(canonicalJson(indexOf(listed.filter((k) => staying.has(k))))))
        }
        if (!sameImages) yield* writeAtomic(imagesPath, files.images)
        if (!sameIndex) yield* writeAtomic(indexPath, files.index)
        known.set(streamsDir, files)
        return !(sameImages && sameIndex)
      }).pipe(Effect.uninterruptible)

    /** Reads the published catalog, or None when there is none or it is not readable as one. */
    const readImages = (streamsDir: string) =>
      fs.readFileString(path.join(streamsDir, "images.json")).pipe(
        Effect.flatMap(Schema.decodeUnknown(Schema.parseJson(Images))),
        Effect.option
      )

    /** Changes whenever images.json is replaced: another writer is seen by a stamp this process did not make. */
    const stamp = (streamsDir: string) =>
      Effect.promise(() =>
        stat(path.join(streamsDir, "images.json")).then(
          (s) => `${s.ino}:${s.mtimeMs}:${s.size}`,
          () => undefined
        )
      )

    /** Removes temp files a kill -9 left in the streams folder. */
    const removeStaleTemps = (streamsDir: string) =>
      removeTemps(streamsDir, ["images.json", "index.json"]).pipe(
        Effect.provideService(FileSystem.FileSystem, fs),
        Effect.provideService(Path.Path, path)
      )

    return { write, readImages, stamp, removeStaleTemps } as const
  })
}) {}
