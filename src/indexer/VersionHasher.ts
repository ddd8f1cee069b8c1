/**
 * Hashes one version: reads and checks its metadata, hashes every file on the worker pool (its own sha256 and
 * the combined fingerprints), and tells whether its files stayed the same files while they were read. A
 * failure is the version's refusal, never the run's.
 */
import { Effect, Fiber } from "effect"
import { stat } from "node:fs/promises"
import { sameArchitecture } from "../simplestreams/Architecture.js"
import type { Compat } from "../simplestreams/Compat.js"
import { identityOf, sameIdentity } from "../tree/Identity.js"
import { type Refusal, refusal, versionDir } from "../tree/Layout.js"
import { Metadata, type MetadataProblem } from "../tree/Metadata.js"
import type { ImageMetadata } from "../tree/MetadataRules.js"
import type { FoundFile, FoundPlan } from "../tree/Scanner.js"
import { type HashedMetadata, type HashedRootfs, type HashedVersion, metadataSources } from "./Catalog.js"
import { Hasher } from "./Hasher.js"

/** How a version is hashed: one read per rootfs when files are many, split jobs to put every core on one. */
export interface HashPlan {
  readonly compat: Compat
  readonly onePass: boolean
  readonly readMetadata: (path: string) => Effect.Effect<ImageMetadata, MetadataProblem>
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
      ).pipe(Effect.catchTag("HashError", (e) => Effect.fail(refusal(basename(e.path), e.reason))))

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

    /**
     * Every file of the plan is still the file the scan saw: same device, inode, size, mtime and ctime. Checked
     * after hashing, so that bytes read from a file replaced or rewritten meanwhile are never published.
     */
    const stillSame = (plan: FoundPlan) =>
      Effect.promise(async () => {
        for (const f of [...plan.metadata, ...plan.rootfs]) {
          const now = await stat(f.path).catch(() => undefined)
          if (!now || !sameIdentity(f, identityOf(f.name, now))) return false
        }
        return true
      })

    return { hashVersion, hashPlanFor, stillSame, workers: hasher.workers } as const
  })
}) {}
