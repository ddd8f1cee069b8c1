/**
 * Feeds the metrics while the service runs: each generation as it is committed (a subscriber of its own, so
 * publishing never waits for it), and, whenever they are rendered, the service's last report, the readiness
 * rule's answer now and the mirrors' statuses. `serve` renders on each scrape of `/metrics`; `watch` writes
 * a textfile (MetricsFile.ts).
 */
import { FileSystem, Path } from "@effect/platform"
import { Clock, Effect, Queue } from "effect"
import type { MirrorTarget } from "../mirror/MirrorConfig.js"
import type { MirrorPush } from "../mirror/MirrorPush.js"
import { readMirrorStatuses } from "../mirror/MirrorReport.js"
import { Generations } from "../publish/Generations.js"
import { Metrics } from "./Metrics.js"
import { readiness, type ServiceReport } from "./Readiness.js"
import { ServiceBoard } from "./ServiceBoard.js"

export interface HealthSettings {
  readonly streamsDir: string
  readonly stateDir: string
  readonly mirrors: ReadonlyArray<MirrorTarget>
  /** A settled version waiting longer than this to be published makes the catalog not current. */
  readonly staleAfterMs: number
}

/**
 * Starts feeding the metrics from the generations stream until the scope closes. `settings` is asked at each
 * use: `watch` reloads its config on SIGHUP. Answers what `/readyz` and `/metrics` (or the textfile) need.
 */
export const feedMetrics = (settings: () => HealthSettings) =>
  Effect.gen(function* () {
    const metrics = yield* Metrics
    const board = yield* ServiceBoard
    const generations = yield* Generations
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const context = yield* Effect.context<MirrorPush>()
    const queue = yield* generations.subscribe
    yield* Queue.take(queue).pipe(Effect.flatMap(metrics.observeGeneration), Effect.forever, Effect.forkScoped)

    const catalogOnDisk = (streamsDir: string) =>
      fs.stat(path.join(streamsDir, "images.json")).pipe(
        Effect.map((s) => s.type === "File"),
        Effect.orElseSucceed(() => false)
      )

    /** The readiness rule, for this report at this time. */
    const readinessAt = (s: HealthSettings, report: ServiceReport | undefined, now: number) =>
      Effect.map(catalogOnDisk(s.streamsDir), (onDisk) => readiness(report, onDisk, now, s.staleAfterMs))

    /** The readiness rule, now. */
    const ready = Effect.gen(function* () {
      return yield* readinessAt(settings(), yield* board.latest, yield* Clock.currentTimeMillis)
    })

    /** Every metric brought up to date, in the Prometheus text format. */
    const render = Effect.gen(function* () {
      const s = settings()
      const report = yield* board.latest
      const now = yield* Clock.currentTimeMillis
      yield* metrics.observeReport(report, yield* readinessAt(s, report, now), now)
      const primary = report === undefined ? undefined : { generation: report.status.generation, at: report.status.committedAt ?? null }
      yield* metrics.observeMirrors(yield* readMirrorStatuses(s.mirrors, s.stateDir, primary, now).pipe(Effect.provide(context)))
      return yield* metrics.render
    })

    /** The service has reported once: before that, the metrics say nothing of the catalog yet (all 0). */
    const reported = Effect.map(board.latest, (r) => r !== undefined)

    return { ready, render, reported, reports: board.changes, contentType: metrics.contentType } as const
  })

export type HealthFeed = Effect.Effect.Success<ReturnType<typeof feedMetrics>>
