/**
 * Hashes one version: reads and checks its metadata, hashes every file on the worker pool (its own sha256 and
 * the combined fingerprints), and tells whether its files stayed the same files while they were read. A
 * failure is the version's refusal, never the run's.
 */
import { Effect, Either, Fiber } from "effect"
import { readFileSync } from "node:fs"
import { stat } from "node:fs/promises"
import { sameArchitecture } from "../simplestreams/Architecture.js"
import type { Compat } from "../simplestreams/Compat.js"
import { identityOf, sameIdentity } from "../tree/Identity.js"
import { identityNow } from "../tree/IdentityNow.js"
import { isImageFileName, planFiles, type Refusal, refusal, versionDir } from "../tree/Layout.js"
import { Metadata, type MetadataProblem } from "../tree/Metadata.js"
import type { ImageMetadata } from "../tree/MetadataRules.js"
import type { FoundFile, FoundPlan } from "../tree/Scanner.js"
import { checkSums, parseSha256Sums, sumsFileLimit, sumsFileName } from "../tree/Sha256Sums.js"
import { type HashedMetadata, type HashedRootfs, type HashedVersion, metadataSources } from "./Catalog.js"
import { Hasher, type HashJobResult, hashHereNow, inlineLimit } from "./Hasher.js"

/** How a version is hashed: one read per rootfs when files are many, split jobs to put every core on one. */
export interface HashPlan {
  readonly compat: Compat
  /** This rootfs is hashed in one job that reads it once (else in split jobs: its own hash, one per metadata file). */
  readonly onePass: (rootfs: FoundPlan["rootfs"][number]) => boolean
  readonly readMetadata: (path: string) => Effect.Effect<ImageMetadata, MetadataProblem>
  /** Every metadata file read ahead, once the batch is done. */
  readonly metadataRead: Effect.Effect<ReadonlyMap<string, Either.Either<ImageMetadata, MetadataProblem>>>
}

/** The metadata files a compat mode reads: each client's own file when there is one, else the one there is. */
const usedMetadata = (plan: FoundPlan, compat: Compat) => {
  const sources = metadataSources(compat, plan.metadata.map((m) => m.name))
  return plan.metadata.filter((m) => sources.some(([, file]) => file === m.name))
}

const checkArchitecture = (plan: FoundPlan, file: FoundFile, info: ImageMetadata): Either.Either<ImageMetadata, Refusal> =>
  sameArchitecture(info.architecture, plan.ref.arch)
    ? Either.right(info)
    : Either.left(refusal(file.name, `metadata.yaml says architecture ${info.architecture}, but the folder says ${plan.ref.arch}`))

/**
 * The hashed version from what was read, pure. Every read must have seen the sizes the scan saw, and every
 * job the same metadata bytes; paths in a refusal are file names, made whole by the caller.
 */
const assemble = (
  plan: FoundPlan,
  used: FoundPlan["metadata"],
  infos: ReadonlyArray<ImageMetadata>,
  hashes: ReadonlyArray<Pick<HashJobResult, "own" | "size" | "combined" | "headShas" | "headSizes">>,
  sums: ReadonlyMap<string, string> | undefined
): Either.Either<HashedVersion, Refusal> => {
  const changed = [
    ...plan.rootfs.filter((f, i) => hashes[i]!.size !== f.size),
    ...used.filter((m, j) => hashes.some((h) => h.headSizes[j] !== m.size || h.headShas[j] !== hashes[0]!.headShas[j]))
  ]
  if (changed.length > 0) return Either.left(refusal(changed[0]!.name, "changed while being hashed; it is tried again when it changes"))
  const metadata = used.map((m, j): HashedMetadata => ({ name: m.name, size: m.size, sha256: hashes[0]!.headShas[j]!, metadata: infos[j]! }))
  const rootfs = plan.rootfs.map(
    (f, i): HashedRootfs => ({
      name: f.name,
      ftype: f.ftype,
      size: f.size,
      sha256: hashes[i]!.own!,
      combined: Object.fromEntries(used.map((m, j) => [m.name, hashes[i]!.combined[j]!]))
    })
  )
  if (sums) {
    const present = [...plan.metadata, ...plan.rootfs].map((f) => f.name)
    const wrong = checkSums(sums, [...metadata, ...rootfs], present, isImageFileName)
    if (wrong) return Either.left(refusal(wrong.file, wrong.reason))
  }
  return Either.right({ ref: plan.ref, metadata, rootfs, ...(plan.image ? { image: plan.image } : {}) })
}

/**
 * The sums of a version, read at once (a few lines): none when it has no SHA256SUMS, and a file that cannot
 * be read or has a bad line is the version's refusal, naming the line.
 */
const sumsOfNow = (plan: FoundPlan): Either.Either<ReadonlyMap<string, string> | undefined, Refusal> => {
  if (!plan.sums) return Either.right(undefined)
  if (plan.sums.size > sumsFileLimit) return Either.left(refusal(sumsFileName, "larger than 1 MiB: not a list of sums"))
  let text: string
  try {
    text = readFileSync(plan.sums.path, "utf8")
  } catch (e) {
    return Either.left(refusal(sumsFileName, `cannot read: ${(e as Error).message}`))
  }
  return Either.mapLeft(parseSha256Sums(text), (p) => refusal(sumsFileName, p.line === undefined ? p.reason : `line ${p.line} ${p.reason}`))
}

const basename = (p: string) => p.slice(p.lastIndexOf("/") + 1)

export class VersionHasher extends Effect.Service<VersionHasher>()("lxd-image-server/VersionHasher", {
  effect: Effect.gen(function* () {
    const metadata = yield* Metadata
    const hasher = yield* Hasher

    /**
     * Both hashes of every rootfs: in one pass when there are rootfs files enough to keep every core busy,
     * else as separate jobs (own, and one per metadata file) so that one big image still uses every core.
     */
    const hashRootfs = (file: FoundFile, metas: ReadonlyArray<FoundFile>, onePass: boolean) =>
      (onePass || file.size + metas.reduce((n, m) => n + m.size, 0) <= inlineLimit
        ? hasher.hash({ file: file.path, heads: metas.map((m) => m.path), own: true, whole: true }, file.size + metas.reduce((n, m) => n + m.size, 0))
        : Effect.all(
            [
              hasher.hash({ file: file.path, heads: [], own: true, whole: true }),
              ...metas.map((m) => hasher.hash({ file: file.path, heads: [m.path], own: false, whole: true }))
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
      ).pipe(Effect.catchTag("HashError", (e) => Effect.fail(refusal(basename(e.path), e.reason))))

    /**
     * A unified image: metadata.yaml read up to its `rootfs/` while the tarball is hashed once, whole; its own
     * sha256 is the fingerprint.
     */
    const hashUnified = (plan: FoundPlan, file: FoundFile): Effect.Effect<HashedVersion, Refusal> =>
      Effect.flatMap(sumsOfNow(plan), (sums) =>
        Effect.all(
          [
            metadata.read(file.path, "unified").pipe(
              Effect.mapError((p) => refusal(file.name, p.reason)),
              Effect.flatMap((info) => checkArchitecture(plan, file, info))
            ),
            hasher.hash({ file: file.path, heads: [], own: true, whole: true }, file.size).pipe(
              Effect.catchTag("HashError", (e) => Effect.fail(refusal(basename(e.path), e.reason)))
            )
          ],
          { concurrency: "unbounded" }
        ).pipe(
          Effect.flatMap(([info, hashed]): Either.Either<HashedVersion, Refusal> => {
            if (hashed.size !== file.size) return Either.left(refusal(file.name, "changed while being hashed; it is tried again when it changes"))
            const unified = { name: file.name, size: file.size, sha256: hashed.own!, metadata: info }
            const wrong = sums && checkSums(sums, [unified], [file.name], isImageFileName)
            if (wrong) return Either.left(refusal(wrong.file, wrong.reason))
            return Either.right({ ref: plan.ref, metadata: [], rootfs: [], unified, ...(plan.image ? { image: plan.image } : {}) })
          })
        )
      ).pipe(Effect.mapError((r) => refusal(`${versionDir(plan.ref)}/${r.path}`, r.reason)))

    /** Reads the metadata and hashes one version; a failure is the version's refusal, never the run's. */
    const hashVersion = (plan: FoundPlan, how: HashPlan): Effect.Effect<HashedVersion, Refusal> => {
      if (plan.unified) return hashUnified(plan, plan.unified)
      const used = usedMetadata(plan, how.compat)
      const checkedMetadata = (file: FoundFile) =>
        how.readMetadata(file.path).pipe(
          Effect.mapError((p) => refusal(file.name, p.reason)),
          Effect.flatMap((info) => checkArchitecture(plan, file, info))
        )
      // the metadata is read while the rootfs hashes run: the workers never wait for xz
      // a bad SHA256SUMS refuses the version before any byte is hashed
      return Effect.flatMap(sumsOfNow(plan), (sums) =>
        Effect.all(
          [
            Effect.forEach(used, checkedMetadata, { concurrency: "unbounded" }),
            Effect.forEach(plan.rootfs, (file) => hashRootfs(file, used, how.onePass(file)), { concurrency: "unbounded" })
          ],
          { concurrency: "unbounded" }
        ).pipe(Effect.flatMap(([infos, hashes]) => assemble(plan, used, infos, hashes, sums)))
      ).pipe(Effect.mapError((r) => refusal(`${versionDir(plan.ref)}/${r.path}`, r.reason)))
    }

    /**
     * The same for a small version (every file it reads under `inlineLimit` in all), at once on this thread
     * with the metadata already read: at 10,000 tiny versions a fiber and a worker round trip per version cost
     * more than the hashing. Undefined when the version is not small or its metadata is not in `read`.
     */
    /** Every file the version reads, metadata once per rootfs, is under `inlineLimit` in all. */
    const isSmall = (plan: FoundPlan, compat: Compat) => {
      // a unified image is read by a decompressor and hashed whole: never inline
      if (plan.unified) return false
      const metaBytes = usedMetadata(plan, compat).reduce((n, m) => n + m.size, 0)
      return plan.rootfs.reduce((n, f) => n + f.size + metaBytes, 0) <= inlineLimit
    }

    /** The bytes of the version's rootfs files read on the workers, which count them as they read (`bytesRead`). */
    const workerBytes = (plan: FoundPlan, compat: Compat) => {
      // a unified image is hashed whole (its own sha256), on the workers unless it is small
      if (plan.unified) return plan.unified.size > inlineLimit ? plan.unified.size : 0
      const metaBytes = usedMetadata(plan, compat).reduce((n, m) => n + m.size, 0)
      return plan.rootfs.reduce((n, f) => (f.size + metaBytes > inlineLimit ? n + f.size : n), 0)
    }

    /** The hashes of a small version's files, read at once; a file that cannot be read is its refusal. */
    const hashSmallFilesNow = (plan: FoundPlan, compat: Compat): Either.Either<ReadonlyArray<HashJobResult>, Refusal> => {
      const used = usedMetadata(plan, compat)
      const hashes: Array<HashJobResult> = []
      for (const f of plan.rootfs) {
        const h = hashHereNow({ file: f.path, heads: used.map((m) => m.path), own: true, whole: true })
        if (Either.isLeft(h)) return Either.left(refusal(`${versionDir(plan.ref)}/${basename(h.left.path)}`, h.left.reason))
        hashes.push(h.right)
      }
      return Either.right(hashes)
    }

    /**
     * The hashed version of a small version from its hashes and its metadata already read, at once: at 10,000
     * tiny versions a fiber and a worker round trip per version cost more than the hashing. Undefined when its
     * metadata is not in `read` (then `hashVersion` reads it).
     */
    const assembleSmallNow = (
      plan: FoundPlan,
      compat: Compat,
      hashes: ReadonlyArray<HashJobResult>,
      read: ReadonlyMap<string, Either.Either<ImageMetadata, MetadataProblem>>
    ): Either.Either<HashedVersion, Refusal> | undefined => {
      const used = usedMetadata(plan, compat)
      if (used.some((m) => !read.has(m.path))) return undefined
      const fail = (r: Refusal) => Either.left(refusal(`${versionDir(plan.ref)}/${r.path}`, r.reason))
      const sums = sumsOfNow(plan)
      if (Either.isLeft(sums)) return fail(sums.left)
      const infos: Array<ImageMetadata> = []
      for (const m of used) {
        const info = Either.flatMap(
          Either.mapLeft(read.get(m.path)!, (p) => refusal(m.name, p.reason)),
          (i) => checkArchitecture(plan, m, i)
        )
        if (Either.isLeft(info)) return fail(info.left)
        infos.push(info.right)
      }
      const assembled = assemble(plan, used, infos, hashes, sums.right)
      return Either.isLeft(assembled) ? fail(assembled.left) : assembled
    }

    type MetadataReads = ReadonlyMap<string, Either.Either<ImageMetadata, MetadataProblem>>
    /**
     * Metadata reads started ahead (`prefetch`), by the file's path and identity as the scan saw it: taken by
     * the first `hashPlanFor` that needs them. A file that changed since is not the one read: read again.
     */
    const ahead = new Map<string, Fiber.Fiber<MetadataReads>>()
    const aheadKey = (f: FoundFile) => `${f.path}\u0000${f.dev}:${f.ino}:${f.size}:${f.mtimeMs}:${f.ctimeMs}`
    const aheadSlots = yield* Effect.makeSemaphore(2)

    /**
     * Starts reading the metadata of these versions, in the scope's life, two batches at a time (one xz per
     * core): `update` starts each batch as soon as the scan found it, so that xz decompresses while the tree is
     * still being scanned.
     */
    const prefetch = (plans: ReadonlyArray<FoundPlan>) =>
      Effect.gen(function* () {
        const files = plans.flatMap((p) => p.metadata)
        if (files.length === 0) return
        const reading = yield* Effect.forkScoped(aheadSlots.withPermits(1)(metadata.readAll(files.map((f) => f.path))))
        for (const f of files) ahead.set(aheadKey(f), reading)
        // what nobody took (a version withheld, a run that stopped) is forgotten with the scope
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            for (const f of files) if (ahead.get(aheadKey(f)) === reading) ahead.delete(aheadKey(f))
          })
        )
      })

    /**
     * A HashPlan for these plans: metadata read in batches ahead, one-pass hashing when files are many. The
     * last rootfs files to go to the workers, one per worker, are hashed in split jobs all the same: jobs half
     * as long at the end let the workers finish together (20 files of 100 MiB on 2 cores: one core had been
     * idle at the end for 60–100 ms, half a file's hashing, in most runs).
     */
    const hashPlanFor = (plans: ReadonlyArray<FoundPlan>, compat: Compat) =>
      Effect.gen(function* () {
        const started = new Set<Fiber.Fiber<MetadataReads>>()
        const paths: Array<string> = []
        for (const f of plans.flatMap((p) => p.metadata)) {
          const reading = ahead.get(aheadKey(f))
          ahead.delete(aheadKey(f))
          if (reading) started.add(reading)
          else paths.push(f.path)
        }
        const all = yield* Effect.fork(
          Effect.zipWith(Effect.forEach(started, Fiber.join), metadata.readAll(paths), (before, now) => {
            const merged = new Map(now)
            for (const reads of before) for (const [path, read] of reads) if (!merged.has(path)) merged.set(path, read)
            return merged as MetadataReads
          })
        )
        return {
          compat,
          onePass: onePassFor(plans, compat),
          readMetadata: (p: string) => Fiber.join(all).pipe(Effect.flatMap((m) => m.get(p) ?? metadata.read(p))),
          metadataRead: Fiber.join(all)
        } satisfies HashPlan
      })

    /**
     * Every file of the plan is still the file the scan saw: same device, inode, size, mtime and ctime. Checked
     * after hashing, so that bytes read from a file replaced or rewritten meanwhile are never published.
     */
    const stillSame = (plan: FoundPlan) =>
      Effect.promise(async () => {
        for (const f of planFiles(plan)) {
          const now = await stat(f.path).catch(() => undefined)
          if (!now || !sameIdentity(f, identityOf(f.name, now))) return false
        }
        return true
      })

    /** See hashPlanFor: the rootfs files hashed in one pass, when there are more files on the workers than workers. */
    const onePassFor = (plans: ReadonlyArray<FoundPlan>, compat: Compat): ((rootfs: FoundPlan["rootfs"][number]) => boolean) => {
      const pooled = plans.filter((p) => !isSmall(p, compat)).flatMap((p) => p.rootfs)
      if (pooled.length <= hasher.workers) return () => pooled.length === hasher.workers
      const last = new Set(pooled.slice(-hasher.workers))
      return (rootfs) => !last.has(rootfs)
    }

    /** `stillSame`, at once: for the small versions hashed at once. */
    const stillSameNow = (plan: FoundPlan): boolean => {
      for (const f of planFiles(plan)) {
        const now = identityNow(f.path, f.name)
        if (!now || !sameIdentity(f, now)) return false
      }
      return true
    }

    return {
      hashVersion,
      isSmall,
      workerBytes,
      hashSmallFilesNow,
      assembleSmallNow,
      hashPlanFor,
      prefetch,
      stillSame,
      stillSameNow,
      workers: hasher.workers,
      bytesRead: hasher.bytesRead,
      /** Starts the hash workers now (a version too large to hash on this thread was found). */
      startWorkers: hasher.start
    } as const
  })
}) {}
