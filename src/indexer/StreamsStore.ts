/**
 * Writes `images.json` and `index.json`: validated with Schema, keys sorted, each file written to a temp
 * file in the same folder, fsynced and renamed over the old one, `images.json` first and `index.json` last,
 * so a reader never sees a torn file or an index naming products the catalog lacks.
 */
import { FileSystem, Path } from "@effect/platform"
import { Data, Effect, ParseResult, Schema } from "effect"
import { canonicalJson, Images, Index } from "../simplestreams/Streams.js"
import { removeStaleTemps as removeTemps, writeFileAtomic } from "./AtomicFile.js"

export class StreamsWriteError extends Data.TaggedError("StreamsWriteError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `cannot write ${this.path}: ${this.reason}`
  }
}


export class StreamsStore extends Effect.Service<StreamsStore>()("lxd-image-server/StreamsStore", {
  effect: Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path

    const writeAtomic = (target: string, text: string) =>
      writeFileAtomic(target, text).pipe(
        Effect.mapError((e) => new StreamsWriteError({ path: target, reason: e.message })),
        Effect.provideService(FileSystem.FileSystem, fs),
        Effect.provideService(Path.Path, path)
      )

    const encode = <A, I>(schema: Schema.Schema<A, I>, value: A, target: string) =>
      Schema.encode(schema)(value).pipe(
        Effect.map(canonicalJson),
        Effect.mapError(
          (e) =>
            new StreamsWriteError({
              path: target,
              reason: `the catalog does not match the format clients accept:\n${ParseResult.TreeFormatter.formatErrorSync(e)}`
            })
        )
      )

    const unchanged = (target: string, text: string) =>
      fs.readFileString(target).pipe(
        Effect.map((current) => current === text),
        Effect.orElseSucceed(() => false)
      )

    /**
     * Writes both files; nothing is written unless both validate, and a file whose bytes would not change is
     * left alone. Uninterruptible: a stop request waits for the renames, so both files stay whole and agree.
     * Returns whether anything was written.
     */
    const write = (streamsDir: string, images: Images, index: Index) =>
      Effect.gen(function* () {
        const imagesPath = path.join(streamsDir, "images.json")
        const indexPath = path.join(streamsDir, "index.json")
        const imagesText = yield* encode(Images, images, imagesPath)
        const indexText = yield* encode(Index, index, indexPath)
        const listed = index.index.images?.products ?? []
        const keys = Object.keys(images.products)
        if (listed.length !== keys.length || listed.some((k, i) => k !== keys[i])) {
          return yield* new StreamsWriteError({ path: indexPath, reason: "its products differ from images.json's" })
        }
        yield* fs
          .makeDirectory(streamsDir, { recursive: true })
          .pipe(Effect.mapError((e) => new StreamsWriteError({ path: streamsDir, reason: e.message })))
        const sameImages = yield* unchanged(imagesPath, imagesText)
        const sameIndex = yield* unchanged(indexPath, indexText)
        if (!sameImages) yield* writeAtomic(imagesPath, imagesText)
        if (!sameIndex) yield* writeAtomic(indexPath, indexText)
        return !(sameImages && sameIndex)
      }).pipe(Effect.uninterruptible)

    /** Reads the published catalog, or undefined when there is none or it is not readable as one. */
    const readImages = (streamsDir: string) =>
      fs.readFileString(path.join(streamsDir, "images.json")).pipe(
        Effect.flatMap(Schema.decodeUnknown(Schema.parseJson(Images))),
        Effect.option
      )

    /** Removes temp files a kill -9 left in the streams folder. */
    const removeStaleTemps = (streamsDir: string) =>
      removeTemps(streamsDir, ["images.json", "index.json"]).pipe(
        Effect.provideService(FileSystem.FileSystem, fs),
        Effect.provideService(Path.Path, path)
      )

    return { write, readImages, removeStaleTemps } as const
  })
}) {}
