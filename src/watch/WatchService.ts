/**
 * The long-running service: keeps `index.json` and `images.json` true while images arrive and leave. A thin
 * loop around the Publisher: file events become `touched`, the settle window and the timers become `tick`, a
 * full scan becomes `treeSeen`; the shell carries out what the publisher asks, under the writer lock. At
 * start it reconciles the whole tree against what the state folder remembers (nothing unchanged is read
 * again), and again on a timer, whenever the watcher loses events and whenever another process wrote the
 * catalog, because file events are hints, not the truth.
 */
import { FileSystem, Path } from "@effect/platform"
import { Clock, Duration, Effect, Option, Queue, Stream } from "effect"
import { writeFileAtomic } from "../indexer/AtomicFile.js"
import { catalogVersionDirs } from "../indexer/Catalog.js"
import { CatalogStore } from "../indexer/CatalogStore.js"
import { Indexer, type IndexerOptions } from "../indexer/Indexer.js"
import { VersionHasher } from "../indexer/VersionHasher.js"
import { WriterLock } from "../indexer/WriterLock.js"
import type { MirrorTarget } from "../mirror/MirrorConfig.js"
import { MirrorPush } from "../mirror/MirrorPush.js"
import { pushToMirrors } from "../mirror/MirrorQueue.js"
import { Generations, logGenerations } from "../publish/Generations.js"
import { openJournal } from "../publish/Journal.js"
import { makePublishShell } from "../publish/PublishShell.js"
import { renderKeyOf, restoreText } from "../publish/RestoreText.js"
import { buildId } from "../process/BuildId.js"
import { readWrittenCatalog } from "../publish/PublishOne.js"
import { Publisher, type PublisherStatus } from "../publish/Publisher.js"
import { versionKeyOf } from "../tree/VersionKey.js"
import { Deleter } from "../retention/Deleter.js"
import { carryOutDeletions, deleteDangling, recordWithdrawals } from "../retention/Lifecycle.js"
import { dueDeletions, nextDeletion, type RetentionPolicy, toWithdraw } from "../retention/Retention.js"
import { readWithdrawals, withdrawalStamp, type WithdrawnVersion } from "../retention/WithdrawalLog.js"
import { Scanner } from "../tree/Scanner.js"
import type { SyncTarget } from "../sync/SyncConfig.js"
import { Syncer } from "../sync/Syncer.js"
import { syncOnInterval } from "../sync/SyncSchedule.js"
import { startPageWriter, webRootOf } from "../page/PageWriter.js"
import { collectGarbage } from "../process/CollectGarbage.js"
import { waitBeforeNextLook } from "./Wake.js"
import { Metadata } from "../tree/Metadata.js"
import { defaultWatchTree, type TreeEvent } from "./Watcher.js"
import type { ServiceReport } from "../health/Readiness.js"

/** What `watch` does after publishing: `[prune]` of the config file. */
export interface WatchRetention {
  /** The policy applied after each generation: off when it sets no limit. */
  readonly policy: RetentionPolicy
  /** Withdrawn versions' files are deleted this long after they left the catalog. */
  readonly graceMs: number
  /** Hidden and refused folders unchanged this long are deleted at each full reconcile; undefined: never. */
  readonly danglingMs?: number | undefined
}

export interface WatchOptions extends IndexerOptions {
  readonly stateDir: string
  readonly retention?: WatchRetention | undefined
  /** A version is published once no file of it changed for this long. */
  readonly settle: Duration.Duration
  /** The whole tree is reconciled this often, events or not. */
  readonly reconcileEvery: Duration.Duration
  /** Hosts that get every generation pushed (none when absent). */
  readonly mirrors?: ReadonlyArray<MirrorTarget>
  /** Upstream servers copied into the tree on an interval (none when absent). */
  readonly syncs?: ReadonlyArray<SyncTarget>
  /** The catalog page is rendered at most this often (default 2 s). */
  readonly pageEvery?: Duration.Duration | undefined
  /** Told where the service stands after each turn of its loop that did work (health endpoints, metrics). */
  readonly report?: ((report: ServiceReport) => Effect.Effect<void>) | undefined
  /** The file events under the images folder: chokidar's (`watchTree`) unless given (a test's, that loses some). */
  readonly events?: ((imagesDir: string) => Stream.Stream<TreeEvent>) | undefined
}

/** The service's state as `status.json` in the state folder shows it (the catalog's health for people and tools). */
export const statusJson = (s: PublisherStatus, pid: number) =>
  `${JSON.stringify(
    {
      pid,
      generation: s.generation,
      committed_at: s.committedAt === undefined ? null : new Date(s.committedAt).toISOString(),
      products: s.products,
      versions: s.versions,
      refused: s.refused.map((r) => ({ path: r.path, reason: r.reason })),
      settling: s.settling,
      write_error:
        s.writeTrouble === undefined
          ? null
          : {
              reason: s.writeTrouble.reason,
              since: new Date(s.writeTrouble.since).toISOString(),
              failures: s.writeTrouble.failures,
              retry_at: new Date(s.writeTrouble.retryAt).toISOString()
            }
    },
    null,
    2
  )}\n`

export const statusFileName = "status.json"

/** What the file watcher's stream leaves in the service's queue when it ends. */
const watcherEnded: unique symbol = Symbol("the file watcher ended")

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`

export class WatchService extends Effect.Service<WatchService>()("lxd-image-server/WatchService", {
  effect: Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const indexer = yield* Indexer
    const scanner = yield* Scanner
    const store = yield* CatalogStore
    const lock = yield* WriterLock
    const metadata = yield* Metadata
    const context = yield* Effect.context<Scanner | CatalogStore | Generations | VersionHasher | MirrorPush | Deleter | Syncer>()

    /** Runs until interrupted; fails only when the service itself cannot go on (no images folder, the watcher gone). */
    const run = (options: WatchOptions) =>
      Effect.gen(function* () {
        const imagesDir = path.resolve(options.imagesDir)
        const settleMs = Duration.toMillis(options.settle)
        // the watcher crawls the tree (seconds, at 10,000 versions) while the rest starts and the state is read:
        // started first, and given its turn at once (a forked fiber otherwise waits for this one to pause)
        // the watcher never ends while the service runs: if it does, the loop learns it from the queue and the
        // service stops rather than go on deaf (a race of the loop against the watcher's end was interrupted
        // without being waited for, so a stop could cut a commit between its write and its journal line)
        const events = yield* Queue.unbounded<TreeEvent | typeof watcherEnded>()
        yield* (options.events ?? defaultWatchTree())(imagesDir).pipe(
          Stream.runForEach((e) => Queue.offer(events, e)),
          Effect.ensuring(Queue.offer(events, watcherEnded)),
          Effect.forkScoped
        )
        yield* Effect.yieldNow()
        // the helpers that take the lock and decompress metadata tarballs, forked while this process is small
        // (see ForkHelper): the first reconcile, once the watcher has crawled, then forks nothing
        yield* lock.prepare(options.streamsDir)
        yield* metadata.startHelpers
        const imagesPath = yield* indexer.imagesPathFor(options)
        yield* fs.makeDirectory(options.streamsDir, { recursive: true }).pipe(Effect.ignore)
        yield* store.removeStaleTemps(options.streamsDir)
        const now = Clock.currentTimeMillis

        const journal = yield* openJournal(options.stateDir, options.compat)
        const publisher = new Publisher({ compat: options.compat, imagesPath, settleMs }, journal.state)
        const renderKey = renderKeyOf(buildId, options.compat, imagesPath)
        const { text, rendered, file: restoredFrom } = restoreText(publisher, journal.state, path.join(options.streamsDir, "images.json"), renderKey)
        /**
         * images.json as the text was cut from it: the first reconcile need not read it again to compare. Let go
         * of after that reconcile, which alone may use it.
         */
        let imagesKnown = restoredFrom && { file: restoredFrom, bytes: text.imagesChunks() }
        if (text.size > 0) yield* Effect.logDebug(`catalog text: ${text.size - rendered} products as images.json holds them, ${rendered} rendered`)
        const shell = yield* makePublishShell(publisher, text, { imagesDir, streamsDir: options.streamsDir, onWriteFailure: "retry", journal, renderKey })
        yield* logGenerations
        /** Tells the mirrors that files left the primary (deleted after their grace period), when there are mirrors. */
        let nudgeMirrors: Effect.Effect<void> = Effect.void
        if (options.mirrors !== undefined && options.mirrors.length > 0) {
          // the status walks every version: only when there is a mirror to tell where the catalog stands
          const committed = publisher.status()
          nudgeMirrors = (yield* pushToMirrors(
            options.mirrors,
            { streamsDir: options.streamsDir, imagesPath, stateDir: options.stateDir },
            { number: committed.generation, at: committed.committedAt ?? (yield* now) }
          )).nudge
        }
        if (options.syncs !== undefined && options.syncs.length > 0) {
          yield* syncOnInterval(options.syncs, { imagesDir, streamsDir: options.streamsDir, stateDir: options.stateDir })
        }
        const page = options.page === undefined ? undefined : yield* startPageWriter(webRootOf(path, options.streamsDir), options.page, options.pageEvery ?? Duration.seconds(2))
        /** images.json as the page last showed it. */
        let pageStamp: string | undefined

        // the first reconcile waits for the watcher to be ready, so that nothing written meanwhile goes unseen,
        // and does not wait forever for it: 30 s, or 1 ms per version remembered when that is longer. The crawl
        // takes about 0.55 ms per version here (100,000 versions: 55 s), and a reconcile before it is over is
        // done again at `ready` (100,000 versions: 7.5 s of this thread's CPU, beside the crawl, for nothing)
        let ready = false
        const readyWaitMs = Math.max(30_000, publisher.memoryEntries().size)
        let treeDueAt: number | undefined = (yield* now) + readyWaitMs
        let lastReconcile = yield* now
        /** The whole tree was reconciled once in this run. */
        let reconciled = false
        /**
         * Folders above version level changed since the last full reconcile. chokidar reads a new folder, then
         * watches it: what lands in it in between (a staging folder renamed into place) sends no event, so a
         * reconcile for such changes is followed by one more, once the watches are set.
         */
        let treeChanged = false
        /** images.json as this service left it: anything else means another writer (update) wrote. */
        let ourStamp: string | undefined
        let lastStatus = ""
        const retention: WatchRetention = options.retention ?? { policy: {}, graceMs: 6 * 3_600_000 }
        const folders = { imagesDir, stateDir: options.stateDir }
        /** The withdrawals in force, as last read, and the log's stamp then: read again whenever it changes. */
        let withdrawals: ReadonlyMap<string, WithdrawnVersion> = new Map()
        let withdrawalsRead: string | undefined
        /** Said once while it lasts. */
        let readError: string | undefined
        /** The generation retention last looked at: it looks again after each new one. */
        let retainedAt = -1
        /** After a deletion that failed (a busy or read-only file system), the next try, a minute on. */
        let deletionsRetryAt = 0
        const retentionOn = retention.policy.keep !== undefined || retention.policy.maxAgeDays !== undefined

        /**
         * Reads the withdrawals again if someone (`prune`, `remove`, this service) appended to them. True when
         * it told the mirrors that files left.
         */
        const syncWithdrawals = Effect.gen(function* () {
          const stamp = yield* withdrawalStamp(options.stateDir)
          if (stamp === withdrawalsRead) return false
          const read = yield* Effect.either(readWithdrawals(options.stateDir))
          // the withdrawals known stay in force: none is published again for a log that cannot be read
          if (read._tag === "Left") {
            if (read.left.message !== readError) yield* Effect.logError(`${read.left.message}; tried again each turn`)
            readError = read.left.message
            return false
          }
          readError = undefined
          withdrawalsRead = stamp
          // a version whose record ended (its files deleted, here or by `prune`): no generation follows, so the
          // mirrors are told, and the files leave them too
          const ended = [...withdrawals.keys()].some((key) => !read.right.has(key))
          withdrawals = read.right
          yield* shell.run(publisher.withhold(withdrawals))
          if (ended) yield* nudgeMirrors
          return ended
        })

        /** The retention policy, after a generation: what it withdraws leaves the catalog in this turn. */
        const retain = Effect.gen(function* () {
          const generation = publisher.generationNumber()
          if (!retentionOn || generation === retainedAt) return
          retainedAt = generation
          const listed = publisher.catalogKeys().map((key) => ({ key, product: key.split("/").slice(0, 4).join(":"), version: key.split("/")[4]! }))
          const chosen = toWithdraw(listed, retention.policy, yield* now)
          if (chosen.length === 0) return
          const files = chosen.map((w) => ({ ...w, files: publisher.remembered(w.key)?.files ?? [] }))
          yield* recordWithdrawals(options.stateDir, files, yield* now, retention.graceMs).pipe(
            Effect.catchAll((e) => Effect.logError(`${e.message}: retention withdraws nothing until it can record what it withdraws`))
          )
          yield* syncWithdrawals
        })

        /** Deletes the files whose grace period is over, of versions the committed catalog no longer lists. */
        const unlisted = () => [...withdrawals.values()].filter((w) => !publisher.isCommitted(w.key))
        const deleteDue = Effect.gen(function* () {
          const t = yield* now
          const due = t < deletionsRetryAt ? [] : dueDeletions(unlisted(), retention.graceMs, t)
          if (due.length === 0) return
          const { deleted, failed } = yield* carryOutDeletions(folders, due, t)
          if (failed > 0) deletionsRetryAt = t + 60_000
          // no generation follows a deletion: the mirrors are told (once: reading the log again may have told them)
          const told = yield* syncWithdrawals
          if (deleted > 0 && !told) yield* nudgeMirrors
        })

        const deleteDanglingFolders = Effect.gen(function* () {
          if (retention.danglingMs === undefined) return
          const listed = new Set(publisher.catalogKeys())
          const refused = publisher.status().refused.flatMap((r) => versionKeyOf(r.path) ?? []).filter((k) => !listed.has(k) && !withdrawals.has(k))
          yield* deleteDangling(imagesDir, refused, retention.danglingMs, yield* now, false)
        })

        /**
         * The version folders the catalog on disk lists, when another writer wrote it: that writer published them
         * whole, so they are not left out while their settle window passes (they would leave the catalog until then).
         */
        const listedByAnotherWriter = readWrittenCatalog(options.streamsDir).pipe(
          Effect.map(Option.match({ onNone: () => new Set<string>(), onSome: ({ images }) => catalogVersionDirs(images, imagesPath) }))
        )

        /** The whole tree: scan, hash what changed, drop what is gone, write. */
        const reconcile = (reason: string) =>
          Effect.gen(function* () {
            const started = yield* now
            const hashedBefore = shell.hashed()
            yield* Effect.logDebug(`reconciling the whole tree (${reason})`)
            const listedElsewhere = reason === "another writer" ? yield* listedByAnotherWriter : undefined
            const scanned = yield* scanner.scan(imagesDir)
            yield* shell.run(publisher.treeSeen(scanned.plans, scanned.refusals, started, listedElsewhere))
            // the files on disk must say what the catalog is, also when no version changed (first start,
            // another writer, a streams folder emptied by hand)
            if (!publisher.hasUncommitted()) {
              yield* store.write(options.streamsDir, text.files(), { checkDisk: true, imagesKnown }).pipe(
                Effect.zipRight(shell.wroteWhole),
                Effect.catchAll((e) => Effect.logError(`${e.message}; the catalog on disk stays as it is until the next reconcile`))
              )
            }
            lastReconcile = yield* now
            reconciled = true
            imagesKnown = undefined
            const hashed = shell.hashed() - hashedBefore
            const mem = process.memoryUsage()
            yield* Effect.logDebug(
              `reconciled ${publisher.status().versions} versions in ${(((yield* now) - started) / 1000).toFixed(2)} s (${hashed} hashed, ${Math.max(0, scanned.plans.length - hashed)} from the hash cache); memory: rss ${mib(mem.rss)}, heap ${mib(mem.heapUsed)} of ${mib(mem.heapTotal)}, external ${mib(mem.external)}`
            )
            // a full scan leaves its garbage (the tree's listing, every plan) in a heap that would otherwise stay
            // that large: collected at once, the service holds about what the file watcher holds
            collectGarbage()
          })

        /** What the loop has to do now, if anything: decided without the lock, which only work takes. */
        const workDue = Effect.gen(function* () {
          const t = yield* now
          if (ourStamp !== undefined && (yield* store.stamp(options.streamsDir)) !== ourStamp) return "another writer" as const
          if (treeDueAt !== undefined && t >= treeDueAt) return "tree" as const
          if (t - lastReconcile >= Duration.toMillis(options.reconcileEvery)) return "timer" as const
          const due = publisher.nextDue()
          if (due !== undefined && due <= t) return "versions" as const
          if ((yield* withdrawalStamp(options.stateDir)) !== withdrawalsRead) return "withdrawals" as const
          const deletion = withdrawals.size === 0 ? undefined : nextDeletion(unlisted(), retention.graceMs)
          return deletion !== undefined && Math.max(deletion, deletionsRetryAt) <= t ? ("deletions" as const) : undefined
        })

        const writeStatus = (s: PublisherStatus) => Effect.gen(function* () {
          const status = statusJson(s, process.pid)
          if (status === lastStatus) return
          lastStatus = status
          yield* writeFileAtomic(path.join(options.stateDir, statusFileName), status).pipe(Effect.ignore)
        })

        /** One turn of the loop: the work due, under the writer lock. */
        const turn = Effect.gen(function* () {
          if ((yield* workDue) === undefined) return
          yield* Effect.gen(function* () {
            // withdrawals first: another writer's are honoured before anything is written
            yield* syncWithdrawals
            // looked at again under the lock: another writer may have finished meanwhile
            const work = yield* workDue
            if (work === "another writer") {
              yield* Effect.logInfo("the catalog was written by another process: reconciling")
              yield* reconcile("another writer")
            } else if (work === "tree") {
              treeDueAt = undefined
              const lookAgain = treeChanged
              treeChanged = false
              yield* reconcile(lookAgain ? "changes above version folders" : "start, or a look after such changes")
              if (lookAgain) treeDueAt = Math.min(treeDueAt ?? Infinity, (yield* now) + Math.max(settleMs, 1000))
              yield* deleteDanglingFolders
            } else if (work === "timer") {
              yield* reconcile("timer")
              yield* deleteDanglingFolders
            } else if (work === "versions") {
              yield* shell.run(publisher.tick(yield* now))
            }
            yield* retain
            yield* deleteDue
            ourStamp = yield* store.stamp(options.streamsDir)
          }).pipe(lock.withLock(options.streamsDir))
          // every write of images.json, a generation or not (the first at start, one after another writer),
          // gets its page, once what the text holds is all on disk (not while a failed write waits)
          // (not before the first reconcile: the page of the last run stands meanwhile, and rendering it would
          // slow the watcher's crawl down)
          if (page && reconciled && ourStamp !== undefined && ourStamp !== pageStamp && !publisher.hasUncommitted()) {
            pageStamp = ourStamp
            yield* page.request(text.snapshot())
          }
          // the status walks every version: once a turn, and the catalog's keys only for a compaction
          const status = publisher.status()
          yield* journal.compactIfDue(publisher.memoryEntries().size, () => ({
            memory: publisher.memoryEntries(),
            catalog: publisher.committedKeys(),
            generation: status.generation,
            committedAt: status.committedAt
          }))
          yield* writeStatus(status)
          if (options.report) yield* options.report({ at: yield* now, status, reconciled })
        })

        const onEvent = (event: TreeEvent | typeof watcherEnded) =>
          Effect.gen(function* () {
            if (event === watcherEnded) return yield* Effect.dieMessage("the file watcher stopped")
            const t = yield* now
            if (event._tag === "Ready") {
              yield* Effect.logDebug("the file watcher is ready: every folder is watched")
              ready = true
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
            if (key !== undefined) publisher.touched(key, t)
            // before `ready`, the first reconcile is still to come and sees it
            else if (ready) {
              treeDueAt = Math.min(treeDueAt ?? Infinity, t + settleMs)
              treeChanged = true
            }
          })

        yield* Effect.logInfo(
          `watching ${imagesDir} (settle ${Duration.format(options.settle)}, full reconcile every ${Duration.format(options.reconcileEvery)})`
        )
        /** The deadlines the loop knows of; between them it looks only every `pollMs` (Wake). */
        const deadlines = () => [
          publisher.nextDue(),
          treeDueAt,
          lastReconcile + Duration.toMillis(options.reconcileEvery),
          withdrawals.size === 0 ? undefined : Math.max(nextDeletion(unlisted(), retention.graceMs) ?? Infinity, deletionsRetryAt)
        ]
        const loop = Effect.gen(function* () {
          for (;;) {
            yield* turn
            // wait for the next event or the next deadline, whichever comes first
            const wait = waitBeforeNextLook(yield* now, deadlines())
            const first = yield* Queue.take(events).pipe(Effect.timeoutOption(Duration.millis(wait)))
            if (first._tag === "Some") yield* onEvent(first.value)
            for (const e of yield* Queue.takeAll(events)) yield* onEvent(e)
          }
        })
        yield* loop
      }).pipe(
        Effect.scoped,
        Effect.provide(context),
        Effect.provideService(FileSystem.FileSystem, fs),
        Effect.provideService(Path.Path, path)
      )

    return { run } as const
  })
}) {}
