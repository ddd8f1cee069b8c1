/**
 * `[sync.NAME]` in `watch`: each upstream synced at start and then every `interval`, in a fiber of its own, so
 * that publishing never waits for a download. What a sync places is published by the service itself, which sees
 * the version folders appear. A sync that fails is logged and tried again at the next interval; the service
 * goes on.
 */
import { Clock, Duration, Effect } from "effect"
import { Progress, silentProgress } from "../progress/Progress.js"
import type { SyncTarget } from "./SyncConfig.js"
import { outcomeLine, type SyncFolders, Syncer } from "./Syncer.js"
import { trustFrom } from "./UpstreamHttp.js"

/** Starts every sync in the current scope. */
export const syncOnInterval = (targets: ReadonlyArray<SyncTarget>, folders: SyncFolders) =>
  Effect.gen(function* () {
    const syncer = yield* Syncer
    yield* Effect.logInfo(`syncing from ${targets.map((t) => `${t.name} every ${Duration.format(Duration.millis(t.intervalMs))}`).join(", ")}`)
    for (const target of targets) {
      const once = Effect.gen(function* () {
        const started = yield* Clock.currentTimeMillis
        // the certificate is read each time: a renewed one is taken without a reload
        const trust = yield* trustFrom(target.certFile)
        const outcome = yield* syncer.run({ url: target.url, trust, filters: target.filters, keep: target.keep }, folders, { dryRun: false })
        const line = `sync ${target.name}: ${outcomeLine(target.url, outcome, (yield* Clock.currentTimeMillis) - started).replace(/^sync /, "")}`
        yield* outcome.failures.length > 0 ? Effect.logWarning(line) : Effect.logInfo(line)
      }).pipe(
        Effect.catchAll((e) => Effect.logError(`sync ${target.name}: ${e.message}; tried again in ${Duration.format(Duration.millis(target.intervalMs))}`)),
        Effect.catchAllDefect((d) => Effect.logError(`sync ${target.name}: ${String(d)}; tried again in ${Duration.format(Duration.millis(target.intervalMs))}`)),
        // no progress bar in the service's log
        Effect.provideService(Progress, silentProgress)
      )
      yield* once.pipe(Effect.zipRight(Effect.sleep(Duration.millis(target.intervalMs))), Effect.forever, Effect.forkScoped)
    }
  })
