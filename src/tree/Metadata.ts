/**
 * Reads metadata.yaml out of a metadata tarball. Decompression is left to the host's own tools (xz, gzip,
 * bzip2, zstd), chosen by magic bytes. The bytes are read until TarScan settles: the archive's end, a rootfs
 * entry, or its cap on decompressed bytes, which stops a decompression bomb (and the tool with it) early.
 */
import { Command, CommandExecutor, FileSystem } from "@effect/platform"
import { isPlatformError, type PlatformError } from "@effect/platform/Error"
import { closeSync, openSync, readSync, statSync } from "node:fs"
import { type ForkHelper, startForkHelper } from "../process/ForkHelper.js"
import { Effect, Either, Option, Scope, Stream } from "effect"
import { type Compression, detectCompression, type ImageMetadata, parseMetadataYaml } from "./MetadataRules.js"
import { TarScan, type TarScanMode, type TarScanResult } from "./TarScan.js"

/** Why a metadata tarball cannot be used, for the refusal line. */
export interface MetadataProblem {
  readonly reason: string
}

const problem = (reason: string): MetadataProblem => ({ reason })

/** An I/O failure on one file is a reason to refuse that file, not a failure of the run. */
const catchPlatform = <A, E, R>(self: Effect.Effect<A, E | PlatformError, R>) =>
  Effect.catchIf(self, isPlatformError, (e) => Effect.fail(problem(`cannot read: ${e.message}`)))

/** Scans the bytes until the result is known; `drained` tells whether the stream was read to its end. */
const scanTar = <E>(bytes: Stream.Stream<Uint8Array, E>, mode: TarScanMode) =>
  Effect.gen(function* () {
    const scan = new TarScan(mode)
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

/** The first line of a tool's complaint, without its name and the file's. */
const toolMessage = (stderr: string) => stderr.trim().split("\n")[0]!.replace(/^[^:]*: (.*: )?/, "")

/**
 * Up to `size` fork helpers, started at first use for the scope's life and taken in turn; none when perl
 * cannot start here (asked once).
 */
const makeHelperPool = (size: number) =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const started: Array<ForkHelper> = []
    let unavailable = false
    let turn = 0
    const lock = Effect.unsafeMakeSemaphore(1)
    /** One more helper, unless perl cannot start here; false when none was started. */
    const startOne = Effect.gen(function* () {
      for (let i = started.length - 1; i >= 0; i--) if (!started[i]!.alive()) started.splice(i, 1)
      if (unavailable || started.length >= size) return false
      const helper = yield* Effect.either(Scope.extend(startForkHelper(), scope))
      if (Either.isRight(helper)) started.push(helper.right)
      else unavailable = started.length === 0
      return Either.isRight(helper)
    })
    const next = lock.withPermits(1)(
      Effect.gen(function* () {
        yield* startOne
        if (started.length === 0) return Option.none<ForkHelper>()
        return Option.some(started[turn++ % started.length]!)
      })
    )
    /** Every helper now: a fork copies the page tables of this process, cheap while it is small. */
    const startAll = lock.withPermits(1)(
      Effect.gen(function* () {
        while (yield* startOne);
      })
    )
    return { next, startAll } as const
  })

/** What a finished scan of a tarball means for the image. */
const toMetadata = (result: TarScanResult): Either.Either<ImageMetadata, MetadataProblem> => {
  if (result._tag === "Invalid") {
    return Either.left(
      problem(result.reason === "not a tar archive" ? "not a tarball (xz, gzip, bzip2, zstd or plain tar)" : result.reason)
    )
  }
  if (result._tag !== "Found") return Either.left(problem("no metadata.yaml in the tarball"))
  const parsed = parseMetadataYaml(new TextDecoder().decode(result.content))
  return "reason" in parsed ? Either.left(problem(parsed.reason)) : Either.right(parsed)
}

/** A metadata tarball decompresses to a few KiB; a larger one (a unified image) is read alone, and stops early. */
const batchFileLimit = 4 * 1024 * 1024
const batchCount = 1000
const batchBytesLimit = 64 * 1024 * 1024

/** A compressed file this small is decompressed through a fork helper, whole, when its output is small too. */
const helperFileLimit = 1024 * 1024

export class Metadata extends Effect.Service<Metadata>()("lxd-image-server/Metadata", {
  scoped: Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const executor = yield* CommandExecutor.CommandExecutor
    const helpers = yield* makeHelperPool(2)

    /**
     * One small file decompressed by a fork helper: `watch` at 10,000 versions is 500 MB, and forking xz from
     * it cost more CPU than the rest of a one-version publish. None when no helper runs here or the output
     * passes the cap: then the tool is run from here and streamed, stopped early as TarScan says.
     */
    const viaHelper = (compression: Exclude<Compression, "none">, path: string, mode: TarScanMode) =>
      Effect.gen(function* () {
        const helper = yield* helpers.next
        if (Option.isNone(helper)) return Option.none()
        const ran = yield* Effect.either(helper.value.run([compression, "-dc", "--", path], batchFileLimit))
        if (Either.isLeft(ran) || ran.right.over) return Option.none()
        const { code, stdout, stderr } = ran.right
        if (code === 127 && stderr.startsWith("cannot run")) {
          return Option.some<TarScanResult>({ _tag: "Invalid", reason: `${compression}-compressed, but '${compression}' cannot run on this host` })
        }
        const scan = new TarScan(mode)
        const pushed = scan.push(stdout)
        const result = pushed._tag === "More" ? scan.end() : pushed
        // the output ended before the archive did: a broken compressed file says so on stderr
        if (result._tag === "Invalid" && pushed._tag === "More" && code !== 0) {
          return Option.some<TarScanResult>({ _tag: "Invalid", reason: `not valid ${compression} data (${toolMessage(stderr) || `exit ${code}`})` })
        }
        return Option.some(result)
      })

    const viaTool = (compression: Exclude<Compression, "none">, path: string, mode: TarScanMode) =>
      Effect.scoped(
        Effect.gen(function* () {
          const proc = yield* Command.start(Command.make(compression, "-dc", "--", path)).pipe(
            Effect.mapError(() => problem(`${compression}-compressed, but '${compression}' cannot run on this host`))
          )
          const stderr = yield* proc.stderr.pipe(Stream.decodeText(), Stream.mkString, Effect.fork)
          // a scan settled before the output's end (a rootfs, a bomb past the cap) leaves the scope with the tool
          // still running: leaving kills it, so it decompresses no further
          const { drained, result } = yield* scanTar(proc.stdout, mode)
          if (result._tag === "Invalid" && drained) {
            // the output ended before the archive did: a broken compressed file says so on stderr
            const code = yield* proc.exitCode
            if (code !== 0) {
              const message = toolMessage(yield* stderr.await.pipe(Effect.flatten, Effect.orElseSucceed(() => "")))
              return { _tag: "Invalid", reason: `not valid ${compression} data (${message || `exit ${code}`})` } as const
            }
          }
          return result as TarScanResult
        })
      ).pipe(
        Effect.provideService(CommandExecutor.CommandExecutor, executor),
        catchPlatform
      )

    /** The first bytes, for the magic number, read at once: a stream per file costs milliseconds, ×10,000. */
    const headNow = (path: string): Buffer => {
      const fd = openSync(path, "r")
      try {
        const buffer = Buffer.alloc(8)
        return buffer.subarray(0, readSync(fd, buffer, 0, 8, 0))
      } finally {
        closeSync(fd)
      }
    }
    const sizeNow = (path: string) => {
      try {
        return statSync(path).size
      } catch {
        return Infinity
      }
    }
    const head = (path: string) => Effect.try({ try: () => headNow(path), catch: (e) => problem(`cannot read: ${(e as Error).message}`) })

    /** metadata.yaml of a metadata tarball, or (`unified`) of a unified image, read up to its `rootfs/`. */
    const read = (path: string, mode: TarScanMode = "split"): Effect.Effect<ImageMetadata, MetadataProblem> =>
      Effect.gen(function* () {
        const first = yield* head(path)
        if (first.length === 0) return yield* Effect.fail(problem("empty file"))
        const compression = detectCompression(first)
        if (compression === "none") return yield* toMetadata((yield* scanTar(fs.stream(path, { chunkSize: FileSystem.KiB(64) }), mode)).result)
        const small = yield* Effect.sync(() => sizeNow(path) <= helperFileLimit)
        const result = Option.getOrUndefined(small ? yield* viaHelper(compression, path, mode) : Option.none()) ?? (yield* viaTool(compression, path, mode))
        return yield* toMetadata(result)
      }).pipe(catchPlatform)

    /**
     * Exit code and stdout of a command, or None as soon as stdout passes `limit` bytes: the command is then
     * stopped (leaving the scope kills it), not read to its end.
     */
    const capture = (command: Command.Command, limit: number) =>
      Effect.scoped(
        Effect.gen(function* () {
          const proc = yield* Command.start(command)
          // drained aside: a command stopped early must not wait on its stderr
          yield* proc.stderr.pipe(Stream.runDrain, Effect.forkScoped)
          const out = yield* proc.stdout.pipe(
            Stream.runFoldWhile(
              { chunks: [] as Array<Uint8Array>, bytes: 0 },
              (s) => s.bytes <= limit,
              (s, chunk) => {
                s.chunks.push(chunk)
                return { chunks: s.chunks, bytes: s.bytes + chunk.length }
              }
            )
          )
          if (out.bytes > limit) return Option.none()
          return Option.some({ code: yield* proc.exitCode, out: Buffer.concat(out.chunks) })
        })
      ).pipe(Effect.provideService(CommandExecutor.CommandExecutor, executor))

    /**
     * Many xz tarballs with two processes instead of one each: `xz --robot --list` tells each file's
     * decompressed size, then one `xz -dc` decompresses them all and the output is cut at those sizes. Spawning
     * costs more than decompressing a metadata tarball, so this is what keeps `update` close to pure hashing.
     * Files it cannot settle (bad index, too large, a failure mid-way) are left for `read`.
     */
    const readXzBatch = (paths: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        const settled = new Map<string, Either.Either<ImageMetadata, MetadataProblem>>()
        // two short lines a file: a name and its sizes
        const listed = yield* capture(Command.make("xz", "--robot", "--list", "--", ...paths), paths.length * 8192)
        if (Option.isNone(listed)) return settled
        const sizes = new Map<string, number>()
        let name: string | undefined
        for (const line of listed.value.out.toString("utf8").split("\n")) {
          const [kind, a, , , uncompressed] = line.split("\t")
          if (kind === "name") name = a
          else if (kind === "file" && name !== undefined) sizes.set(name, Number(uncompressed))
        }
        // the decompressed bytes are held at once: small files only, and not too many of them
        let held = 0
        const batch = paths.filter((p) => {
          const size = sizes.get(p) ?? Infinity
          if (size > batchFileLimit || held + size > batchBytesLimit) return false
          held += size
          return true
        })
        if (batch.length === 0) return settled
        // the listed sizes come from each file's index, which xz checks only after writing the bytes: an index
        // that understates a size (a bomb passing as a small file) shows as more output than listed, and xz is
        // stopped there, not read on into memory
        const unpacked = yield* capture(Command.make("xz", "-dc", "--", ...batch), held)
        // a broken or lying file shifts every later one: then each file is read alone, under TarScan's cap
        if (Option.isNone(unpacked) || unpacked.value.code !== 0 || unpacked.value.out.length !== held) return settled
        const out = unpacked.value.out
        let offset = 0
        for (const path of batch) {
          const size = sizes.get(path)!
          const scan = new TarScan()
          const result = scan.push(out.subarray(offset, offset + size))
          offset += size
          settled.set(path, toMetadata(result._tag === "More" ? scan.end() : result))
        }
        return settled
      }).pipe(Effect.orElseSucceed(() => new Map<string, Either.Either<ImageMetadata, MetadataProblem>>()))

    /** Reads many metadata tarballs at once; each result is its own, as `read` would give it. */
    const readAll = (paths: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        // a file that cannot be read is left for `read`, which says why; one named .xz is not opened here (xz
        // --list skips, and leaves for `read`, a file that is not xz)
        const xz = paths.filter((p) => {
          if (p.endsWith(".xz")) return true
          try {
            return detectCompression(headNow(p)) === "xz"
          } catch {
            return false
          }
        })
        const settled = new Map<string, Either.Either<ImageMetadata, MetadataProblem>>()
        // batches keep the command line short and the decompressed bytes held at once small; two run at once,
        // one xz per core while this thread reads what the other gave
        const batches: Array<ReadonlyArray<string>> = []
        for (let i = 0; xz.length > 1 && i < xz.length; i += batchCount) batches.push(xz.slice(i, i + batchCount))
        const batched = yield* Effect.forEach(batches, readXzBatch, { concurrency: 2 })
        for (const batch of batched) for (const [path, result] of batch) settled.set(path, result)
        const rest = paths.filter((p) => !settled.has(p))
        const results = yield* Effect.forEach(rest, (p) => Effect.either(read(p)), { concurrency: 4 })
        rest.forEach((p, i) => settled.set(p, results[i]!))
        return settled as ReadonlyMap<string, Either.Either<ImageMetadata, MetadataProblem>>
      })

    return {
      read,
      readAll,
      /**
       * Starts the fork helpers now rather than at the first tarball read: `watch` calls it at start, before the
       * file watcher's crawl makes the process hundreds of MB that each fork would copy the page tables of.
       */
      startHelpers: helpers.startAll
    } as const
  })
}) {}
