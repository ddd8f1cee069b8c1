/**
 * The long-running service: keeps `index.json` and `images.json` true while images arrive and leave.
 * At start it reconciles the whole tree (re-using cached hashes of unchanged files), then follows file events
 * per version folder, publishing a version only once it is whole and quiet, and reconciles again on a timer
 * and whenever the watcher loses events. One loop does all writing, under the writer lock.
 */
import { FileSystem, Path } from "@effect/platform"
import { stat } from "node:fs/promises"
import { Clock, Duration, Effect, Either, Fiber, Queue, Stream } from "effect"
import type { HashedVersion } from "../indexer/Catalog.js"
import { type CacheEntry, entryFor, loadCache, lookup, saveCache } from "../indexer/HashCache.js"
import { Indexer, type IndexerOptions } from "../indexer/Indexer.js"
import { StreamsStore } from "../indexer/StreamsStore.js"
import { withWriterLock } from "../indexer/WriterLock.js"
import { type Refusal, versionDir } from "../tree/Layout.js"
import { type FoundPlan, sameFile, Scanner } from "../tree/Scanner.js"
import { dueKeys, isQuiet, lastModified, type Pending, touch, versionKeyOf } from "./Settle.js"
import { type TreeEvent, watchTree } from "./Watcher.js"

export interface WatchOptions extends IndexerOptions {
  readonly stateDir: string
  /** A version is published once no file of it changed for this long. */
  readonly settle: Duration.Duration
  /** The whole tree is reconciled this often, events or not. */
  readonly reconcileEvery: Duration.Duration
}

const imagesCount = (v: HashedVersion) => v.rootfs.length

export class WatchService extends Effect.Service<WatchService>()("lxd-image-server/WatchService", {
  effect: Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const indexer = yield* Indexer
    const scanner = yield* Scanner
    const store = yield* StreamsStore

    /** Runs until interrupted; fails only when the service itself cannot go on (no images folder, no writes). */
    const run = (options: WatchOptions) =>
      Effect.gen(function* () {
        const imagesDir = path.resolve(options.imagesDir)
        const settleMs = Duration.toMillis(options.settle)
        const imagesPath = yield* indexer.imagesPathFor(options)
        yield* fs.makeDirectory(options.streamsDir, { recursive: true }).pipe(Effect.ignore)
        yield* store.removeStaleTemps(options.streamsDir)

        const cache = new Map<string, CacheEntry>(yield* loadCache(options.stateDir))
        /** What the last run published (its cache holds exactly that): not news when published again. */
        const publishedBefore = new Map([...cache].map(([k, e]) => [k, JSON.stringify(e.version)]))
        /** The versions in the catalog, by version folder. */
        const published = new Map<string, HashedVersion>()
        /** What was last logged for a path, so that each refusal is logged once. */
        const told = new Map<string, string>()
        const pending = new Map<string, Pending>()
        // the first reconcile waits for the watcher to be ready, so that nothing written meanwhile goes unseen
        // (and does not wait forever for it)
        let treeDueAt: number | undefined = (yield* Clock.currentTimeMillis) + 30_000
        let lastReconcile = yield* Clock.currentTimeMillis
        /** The version folders of the catalog last written: a duplicate of one of them is the one refused. */
        let written = new Set<string>()
        /** images.json's mtime after our last write: anything else means another writer (update) wrote. */
        let ourMtime: number | undefined

        const now = Clock.currentTimeMillis
        const refuse = (r: Refusal) =>
          told.get(r.path) === r.reason
            ? Effect.void
            : Effect.sync(() => told.set(r.path, r.reason)).pipe(Effect.zipRight(indexer.logRefusal(imagesDir, r)))
        const forget = (key: string) =>
          Effect.sync(() => {
            for (const p of told.keys()) if (p === key || p.startsWith(`${key}/`)) told.delete(p)
          })

        /** Hashes what the cache does not hold, and checks that nothing moved meanwhile. */
        const hashPlans = (plans: ReadonlyArray<FoundPlan>) =>
          Effect.gen(function* () {
            const fresh = plans.filter((p) => !lookup(cache, versionDir(p.ref), p, options.compat))
            const how = yield* indexer.hashPlanFor(fresh, options.compat)
            return yield* Effect.forEach(
              plans,
              (plan): Effect.Effect<{ plan: FoundPlan; result: Either.Either<HashedVersion, Refusal>; fresh: boolean }> => {
                const key = versionDir(plan.ref)
                const cached = lookup(cache, key, plan, options.compat)
                if (cached) return Effect.succeed({ plan, result: Either.right(cached), fresh: false })
                return indexer.hashVersion(plan, how).pipe(
                  Effect.either,
                  Effect.tap((result) =>
                    result._tag === "Right" ? Effect.sync(() => cache.set(key, entryFor(plan, options.compat, result.right))) : Effect.void
                  ),
                  Effect.map((result) => ({ plan, result, fresh: true }))
                )
              },
              { concurrency: 4 }
            )
          })

        /**
         * After hashing, every file must still be the file that was hashed: same size, mtime and inode. (A file
         * added meanwhile brings its own event, and the version is looked at again.)
         */
        const stillSame = (plan: FoundPlan, fresh: boolean) =>
          fresh
            ? Effect.promise(async () => {
                // node's own stat, as the Scanner's: its mtimeMs keeps the sub-millisecond part
                for (const f of [...plan.metadata, ...plan.rootfs]) {
                  const now = await stat(f.path).catch(() => undefined)
                  if (!now || !sameFile(f, { ...f, size: now.size, dev: now.dev, ino: now.ino, mtimeMs: now.mtimeMs })) return false
                }
                return true
              })
            : Effect.succeed(true)

        /**
         * Writes the catalog of what is published now, then the hash cache; logs the duplicates it leaves out.
         * A stop request waits for both, so that the next start knows what this one published.
         */
        const write = Effect.gen(function* () {
          const { catalog } = yield* indexer.publish(options, imagesPath, [...published.values()], written)
          for (const r of catalog.refusals) {
            published.delete(r.path)
            yield* refuse(r)
          }
          written = new Set(published.keys())
          for (const clash of catalog.aliasClashes) {
            if (!told.has(clash)) yield* Effect.logWarning(clash)
            told.set(clash, clash)
          }
          ourMtime = yield* imagesMtime
          yield* saveCache(options.stateDir, new Map([...cache].filter(([k]) => published.has(k)))).pipe(
            Effect.catchAll((e) => Effect.logWarning(`cannot save the hash cache in ${options.stateDir}: ${e}`))
          )
        }).pipe(Effect.uninterruptible)

        const imagesMtime = fs.stat(path.join(options.streamsDir, "images.json")).pipe(
          Effect.map((i) => (i.mtime._tag === "Some" ? i.mtime.value.getTime() : undefined)),
          Effect.orElseSucceed(() => undefined)
        )

        /** Takes a hashed version into the catalog; logs it when it is new or changed. */
        const accept = (key: string, version: HashedVersion, since: number | undefined) =>
          Effect.gen(function* () {
            const before = published.has(key) ? JSON.stringify(published.get(key)) : publishedBefore.get(key)
            publishedBefore.delete(key)
            published.set(key, version)
            yield* forget(key)
            if (before === JSON.stringify(version)) return
            const took = since === undefined ? "" : ` in ${(((yield* now) - since) / 1000).toFixed(2)} s`
            yield* Effect.logInfo(`published ${key} (${imagesCount(version)} image${imagesCount(version) === 1 ? "" : "s"})${took}`)
          })

        const remove = (key: string, why: string) =>
          Effect.gen(function* () {
            if (!published.delete(key)) return
            cache.delete(key)
            yield* Effect.logInfo(`removed ${key} from the catalog: ${why}`)
          })

        /** The whole tree: scan, hash what changed, drop what is gone, write. */
        const reconcile = (reason: string) =>
          Effect.gen(function* () {
            const started = yield* now
            yield* Effect.logDebug(`reconciling the whole tree (${reason})`)
            const scanned = yield* scanner.scan(imagesDir)
            const quiet = scanned.plans.filter((p) => isQuiet(p, started, settleMs))
            const quietSet = new Set(quiet)
            for (const p of scanned.plans.filter((p) => !quietSet.has(p))) {
              // still being written: looked at again once quiet; what was published of it stays until then
              pending.set(versionDir(p.ref), { first: started, last: Math.max(started, lastModified(p)) })
            }
            const hashedNow = quiet.filter((p) => !lookup(cache, versionDir(p.ref), p, options.compat)).length
            const results = yield* hashPlans(quiet)
            const seen = new Set(scanned.plans.map((p) => versionDir(p.ref)))
            for (const { plan, result, fresh } of results) {
              const key = versionDir(plan.ref)
              if (result._tag === "Left") {
                seen.delete(key)
                yield* refuse(result.left)
              } else if (yield* stillSame(plan, fresh)) {
                yield* accept(key, result.right, pending.get(key)?.first)
                pending.delete(key)
              } else {
                pending.set(key, touch(pending, key, yield* now))
              }
            }
            for (const r of scanned.refusals) yield* refuse(r)
            for (const key of [...published.keys()]) {
              if (!seen.has(key)) yield* remove(key, "no longer a whole version")
            }
            yield* write
            lastReconcile = yield* now
            yield* Effect.logDebug(
              `reconciled ${published.size} versions in ${(((yield* now) - started) / 1000).toFixed(2)} s (${hashedNow} hashed, ${quiet.length - hashedNow} from the hash cache)`
            )
          })

        /** The versions whose events settled. */
        const processVersions = (keys: ReadonlyArray<string>) =>
          Effect.gen(function* () {
            const since = new Map(keys.map((k) => [k, pending.get(k)?.first]))
            for (const k of keys) pending.delete(k)
            const plans: Array<FoundPlan> = []
            for (const key of keys) {
              const found = yield* scanner.scanVersion(imagesDir, key)
              if (found._tag === "Absent") yield* remove(key, "its folder is gone or incomplete")
              else if (found._tag === "Refused") {
                yield* remove(key, found.refusal.reason)
                yield* refuse(found.refusal)
              } else if (!isQuiet(found.plan, yield* now, settleMs)) {
                pending.set(key, { first: since.get(key) ?? (yield* now), last: Math.max(yield* now, lastModified(found.plan)) })
              } else plans.push(found.plan)
            }
            for (const { plan, result, fresh } of yield* hashPlans(plans)) {
              const key = versionDir(plan.ref)
              if (result._tag === "Left") {
                yield* remove(key, result.left.reason)
                yield* refuse(result.left)
              } else if (yield* stillSame(plan, fresh)) {
                yield* accept(key, result.right, since.get(key))
              } else {
                pending.set(key, { first: since.get(key) ?? (yield* now), last: yield* now })
              }
            }
            yield* write
          })

        /** What the loop has to do now, if anything: decided without the lock, which only work takes. */
        const workDue = Effect.gen(function* () {
          const t = yield* now
          if (ourMtime !== undefined && (yield* imagesMtime) !== ourMtime) return "another writer" as const
          if (treeDueAt !== undefined && t >= treeDueAt) return "tree" as const
          if (t - lastReconcile >= Duration.toMillis(options.reconcileEvery)) return "timer" as const
          return dueKeys(pending, t, settleMs).length > 0 ? ("versions" as const) : undefined
        })

        /** One turn of the loop: the work due, under the writer lock. */
        const turn = Effect.gen(function* () {
          if ((yield* workDue) === undefined) return
          yield* Effect.gen(function* () {
            // looked at again under the lock: another writer may have finished meanwhile
            const work = yield* workDue
            if (work === "another writer") {
              yield* Effect.logInfo("the catalog was written by another process: reconciling")
              yield* reconcile("another writer")
            } else if (work === "tree") {
              treeDueAt = undefined
              yield* reconcile("start or changes above version folders")
            } else if (work === "timer") {
              yield* reconcile("timer")
            } else if (work === "versions") {
              yield* processVersions(dueKeys(pending, yield* now, settleMs))
            }
          }).pipe(withWriterLock(options.streamsDir))
        })

        const onEvent = (event: TreeEvent) =>
          Effect.gen(function* () {
            const t = yield* now
            if (event._tag === "Ready") {
              treeDueAt = t
              return
            }
            if (event._tag === "Lost") {
              yield* Effect.logWarning(`the file watcher reported: ${event.reason}; reconciling the whole tree`)
              treeDueAt = t
              return
            }
            yield* Effect.logDebug(`event ${event.kind} ${event.path}`)
            const key = versionKeyOf(event.path)
            if (key === "tree") treeDueAt = t + settleMs
            else pending.set(key, touch(pending, key, t))
          })

        const events = yield* Queue.unbounded<TreeEvent>()
        const watcher = yield* watchTree(imagesDir).pipe(Stream.runForEach((e) => Queue.offer(events, e)), Effect.forkScoped)
        yield* Effect.logInfo(
          `watching ${imagesDir} (settle ${Duration.format(options.settle)}, full reconcile every ${Duration.format(options.reconcileEvery)})`
        )
        const loop = Effect.gen(function* () {
          for (;;) {
            yield* turn
            // wait for the next event or the next deadline, whichever comes first
            const first = yield* Queue.take(events).pipe(Effect.timeoutOption(Duration.millis(Math.min(settleMs, 250))))
            if (first._tag === "Some") yield* onEvent(first.value)
            for (const e of yield* Queue.takeAll(events)) yield* onEvent(e)
          }
        })
        // the watcher never ends while the service runs: if it does, the service must not go on deaf
        yield* Effect.raceFirst(loop, Fiber.await(watcher).pipe(Effect.zipRight(Effect.dieMessage("the file watcher stopped"))))
      }).pipe(
        Effect.scoped,
        Effect.provideService(FileSystem.FileSystem, fs),
        Effect.provideService(Path.Path, path)
      )

    return { run } as const
  })
}) {}
