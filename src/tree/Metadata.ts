/**
 * Reads metadata.yaml out of a metadata tarball. Decompression is left to the host's own tools (xz, gzip,
 * bzip2, zstd), chosen by magic bytes; only the first entries are read, until metadata.yaml is found.
 */
import { Command, CommandExecutor, FileSystem } from "@effect/platform"
import { isPlatformError, type PlatformError } from "@effect/platform/Error"
import { Effect, Option, Stream } from "effect"
import { type Compression, detectCompression, type ImageMetadata, parseMetadataYaml } from "./MetadataRules.js"
import { TarScan, type TarScanResult } from "./TarScan.js"

/** Why a metadata tarball cannot be used, for the refusal line. */
export interface MetadataProblem {
  readonly reason: string
}

const problem = (reason: string): MetadataProblem => ({ reason })

/** An I/O failure on one file is a reason to refuse that file, not a failure of the run. */
const catchPlatform = <A, E, R>(self: Effect.Effect<A, E | PlatformError, R>) =>
  Effect.catchIf(self, isPlatformError, (e) => Effect.fail(problem(`cannot read: ${e.message}`)))

/** Scans the bytes until the result is known; `drained` tells whether the stream was read to its end. */
const scanTar = <E>(bytes: Stream.Stream<Uint8Array, E>) =>
  Effect.gen(function* () {
    const scan = new TarScan()
    const found = yield* bytes.pipe(
      Stream.map((chunk) => scan.push(chunk)),
      Stream.filter((r) => r._tag !== "More"),
      Stream.runHead
    )
    return Option.match(found, {
      onNone: () => ({ result: scan.end(), drained: true }),
      onSome: (result) => ({ result, drained: false })
    })
  })

export class Metadata extends Effect.Service<Metadata>()("lxd-image-server/Metadata", {
  effect: Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const executor = yield* CommandExecutor.CommandExecutor

    const viaTool = (compression: Exclude<Compression, "none">, path: string) =>
      Effect.scoped(
        Effect.gen(function* () {
          const proc = yield* Command.start(Command.make(compression, "-dc", "--", path)).pipe(
            Effect.mapError(() => problem(`${compression}-compressed, but '${compression}' cannot run on this host`))
          )
          const stderr = yield* proc.stderr.pipe(Stream.decodeText(), Stream.mkString, Effect.fork)
          const { drained, result } = yield* scanTar(proc.stdout)
          if (result._tag === "Invalid" && drained) {
            // the output ended before the archive did: a broken compressed file says so on stderr
            const code = yield* proc.exitCode
            if (code !== 0) {
              const message = (yield* stderr.await.pipe(Effect.flatten, Effect.orElseSucceed(() => "")))
                .trim()
                .split("\n")[0]!
                .replace(/^[^:]*: (.*: )?/, "")
              return { _tag: "Invalid", reason: `not valid ${compression} data (${message || `exit ${code}`})` } as const
            }
          }
          return result as TarScanResult
        })
      ).pipe(
        Effect.provideService(CommandExecutor.CommandExecutor, executor),
        catchPlatform
      )

    const read = (path: string): Effect.Effect<ImageMetadata, MetadataProblem> =>
      Effect.gen(function* () {
        const head = yield* fs.stream(path, { bytesToRead: 8 }).pipe(
          Stream.runCollect,
          Effect.map((chunks) => Buffer.concat([...chunks]))
        )
        if (head.length === 0) return yield* Effect.fail(problem("empty file"))
        const compression = detectCompression(head)
        const result =
          compression === "none"
            ? (yield* scanTar(fs.stream(path, { chunkSize: FileSystem.KiB(64) }))).result
            : yield* viaTool(compression, path)
        if (result._tag === "Invalid") {
          return yield* Effect.fail(
            problem(result.reason === "not a tar archive" ? "not a tarball (xz, gzip, bzip2, zstd or plain tar)" : result.reason)
          )
        }
        if (result._tag !== "Found") return yield* Effect.fail(problem("no metadata.yaml in the tarball"))
        const parsed = parseMetadataYaml(new TextDecoder().decode(result.content))
        return "reason" in parsed ? yield* Effect.fail(problem(parsed.reason)) : parsed
      }).pipe(catchPlatform)

    return { read } as const
  })
}) {}
