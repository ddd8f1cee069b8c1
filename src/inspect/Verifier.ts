/**
 * `verify`'s effects: read the published catalog once, re-hash every file it names on the same worker pool as
 * `update`, and judge. Only reads, so it takes no writer lock; a running `watch` may replace the catalog
 * meanwhile, so a problem is reported only if the catalog on disk still lists that version when the check is
 * done: the versions with problems are checked again against the newer catalog, until it stops changing.
 */
import { FileSystem, Path } from "@effect/platform"
import { stat } from "node:fs/promises"
import { Data, Effect, Either, ParseResult, Schema } from "effect"
import { indexedProducts } from "../indexer/CatalogText.js"
import { Hasher, inlineLimit } from "../indexer/Hasher.js"
import { followBytes, Progress, type ProgressReporter, silentProgress } from "../progress/Progress.js"
import { Images } from "../simplestreams/Streams.js"
import { type Checks, checksOf, combinedId, type FileResult, indexProblems, jobsOf, judge, type Problem, type VersionId } from "./VerifyPlan.js"

/** The catalog cannot be checked at all: missing, not JSON, or not a catalog clients accept. */
export class CatalogUnreadable extends Data.TaggedError("CatalogUnreadable")<{ readonly path: string; readonly reason: string }> {
  override get message() {
    return `${this.path}: ${this.reason}`
  }
}

export interface Snapshot {
  readonly bytes: Uint8Array
  readonly images: Images
}

export interface VerifySummary {
  readonly problems: ReadonlyArray<string>
  readonly versions: number
  readonly files: number
  readonly bytes: number
  /** How many times the catalog was replaced while being checked. */
  readonly replaced: number
}

const decodeImages = Schema.decodeUnknownEither(Schema.parseJson(Images))

/** Reads images.json as it is now. */
export const readSnapshot = (streamsDir: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const file = path.join(streamsDir, "images.json")
    const bytes = yield* fs.readFile(file).pipe(
      Effect.mapError(
        (e) => new CatalogUnreadable({ path: file, reason: e._tag === "SystemError" && e.reason === "NotFound" ? "does not exist (nothing published yet? run `update`)" : e.message })
      )
    )
    const decoded = decodeImages(Buffer.from(bytes).toString("utf8"))
    if (Either.isLeft(decoded)) {
      const issue = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)[0]
      const where = issue && issue.path.length > 0 ? ` at ${issue.path.map(String).join(".")}` : ""
      return yield* new CatalogUnreadable({ path: file, reason: `not a catalog clients accept${where}: ${issue?.message ?? decoded.left.message}` })
    }
    return { bytes, images: decoded.right } satisfies Snapshot
  })

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b)

export class Verifier extends Effect.Service<Verifier>()("lxd-image-server/Verifier", {
  effect: Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const hasher = yield* Hasher

    /**
     * Reads every file of the checks once (each rootfs behind its metadata files) and judges them; `progress`
     * hears of the files and bytes read (the catalog's sizes make the totals).
     */
    const run = (webRoot: string, checks: Checks, progress: ProgressReporter = silentProgress) =>
      Effect.gen(function* () {
        const files = new Map<string, FileResult>()
        const combined = new Map<string, string>()
        const absolute = (p: string) => path.join(webRoot, p)
        const failed = (reason: string): FileResult =>
          reason === "file vanished" ? { _tag: "Missing" } : { _tag: "Unreadable", reason }
        const sizeOf = (p: string) =>
          Effect.promise(() =>
            stat(absolute(p)).then(
              (s) => (s.isFile() ? s.size : undefined),
              () => undefined
            )
          )
        const readAlone = (file: string) =>
          Effect.gen(function* () {
            const size = yield* sizeOf(file)
            if (size === undefined) {
              files.set(file, { _tag: "Missing" })
              return yield* progress.advance(1, 0)
            }
            const done = yield* Effect.either(hasher.hash({ file: absolute(file), heads: [], own: true }, size))
            files.set(file, Either.isRight(done) ? { _tag: "Read", sha256: done.right.own!, size: done.right.size } : failed(done.left.reason))
            // a worker counts the bytes of a file it reads (followBytes)
            yield* progress.advance(1, size > inlineLimit ? 0 : size)
          })
        const jobs = jobsOf(checks)
        const expected = new Map(checks.files.map((f) => [f.path, f.expected[0]?.size ?? 0]))
        const toRead = new Set(jobs.flatMap((j) => [j.file, ...j.heads]))
        if (toRead.size > 0) yield* progress.start(toRead.size, [...toRead].reduce((n, f) => n + (expected.get(f) ?? 0), 0))
        yield* Effect.forEach(
          jobs,
          (job) =>
            Effect.gen(function* () {
              const sizes = yield* Effect.forEach([job.file, ...job.heads], sizeOf)
              // a missing head would fail the combined read: each file that is there is then read on its own
              if (job.heads.length === 0 || sizes.some((s) => s === undefined)) {
                return yield* Effect.forEach([job.file, ...job.heads], readAlone, { discard: true })
              }
              const total = sizes.reduce((a, b) => a! + b!, 0)!
              const done = yield* Effect.either(hasher.hash({ file: absolute(job.file), heads: job.heads.map(absolute), own: true }, total))
              if (Either.isLeft(done)) return yield* Effect.forEach([job.file, ...job.heads], readAlone, { discard: true })
              const r = done.right
              files.set(job.file, { _tag: "Read", sha256: r.own!, size: r.size })
              job.heads.forEach((head, i) => {
                files.set(head, { _tag: "Read", sha256: r.headShas[i]!, size: r.headSizes[i]! })
                combined.set(combinedId(head, job.file), r.combined[i]!)
              })
              // the workers count the rootfs file's bytes, not its metadata files'
              const headBytes = r.headSizes.reduce((a, b) => a + b, 0)
              yield* progress.advance(1 + job.heads.length, headBytes + (total > inlineLimit ? 0 : r.size))
            }),
          { concurrency: 2 * hasher.workers, discard: true }
        ).pipe(followBytes(progress, hasher.bytesRead), Effect.ensuring(progress.done()))
        const bytes = [...files.values()].reduce((sum, f) => sum + (f._tag === "Read" ? f.size : 0), 0)
        return { problems: judge(checks, { files, combined }), files: files.size, bytes }
      })

    const snapshotOf = (streamsDir: string) =>
      readSnapshot(streamsDir).pipe(Effect.provideService(FileSystem.FileSystem, fs), Effect.provideService(Path.Path, path))

    const verify = (options: { readonly streamsDir: string }) =>
      Effect.gen(function* () {
        const streamsDir = path.resolve(options.streamsDir)
        // item paths are relative to the remote's root, the folder that holds streams/v1
        const webRoot = path.dirname(path.dirname(streamsDir))
        const indexOf = (images: Images) =>
          fs.readFile(path.join(streamsDir, "index.json")).pipe(
            Effect.map((b) => indexProblems(indexedProducts(b), images)),
            Effect.orElseSucceed(() => indexProblems(undefined, images))
          )
        let snapshot = yield* snapshotOf(streamsDir)
        const first = checksOf(snapshot.images)
        const done = yield* run(webRoot, first, yield* Progress)
        let problems: ReadonlyArray<Problem> = done.problems
        let replaced = 0
        // a problem seen while `watch` replaced the catalog may be the old catalog's: look again at the
        // versions concerned in the catalog now on disk, until it held still for a whole check
        while (problems.length > 0 && replaced < 5) {
          const now = yield* snapshotOf(streamsDir)
          if (sameBytes(now.bytes, snapshot.bytes)) break
          replaced++
          snapshot = now
          const again = new Set<VersionId>(problems.map((p) => p.version))
          problems = (yield* run(webRoot, checksOf(now.images, again))).problems
          yield* Effect.logDebug(`images.json was replaced while it was checked: ${again.size} version(s) checked again`)
        }
        // the two files are replaced one after the other, so a pair read in between may disagree for a few
        // milliseconds: only a disagreement that lasts is one
        let index = yield* indexOf(snapshot.images)
        for (let attempt = 0; index.length > 0 && attempt < 3; attempt++) {
          yield* Effect.sleep("300 millis")
          index = yield* indexOf((yield* snapshotOf(streamsDir)).images)
        }
        problems = [...index, ...problems]
        return { problems: problems.map((p) => p.line), versions: first.versions, files: done.files, bytes: done.bytes, replaced } satisfies VerifySummary
      })

    return { verify } as const
  })
}) {}
