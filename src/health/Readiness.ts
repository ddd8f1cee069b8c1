/**
 * What the running service says of itself after each turn of its loop, and the rule `serve`'s `/readyz` and
 * the metrics apply to it, pure: ready once the catalog is written and current, not before the first write
 * of this run, nor while writes fail, nor while a settled version has waited longer than `staleAfterMs`.
 */
import type { PublisherStatus } from "../publish/Publisher.js"

export interface ServiceReport {
  /** When it was said (ms since the epoch). */
  readonly at: number
  readonly status: PublisherStatus
  /** This run reconciled the whole tree once: the catalog on disk says what the tree holds. */
  readonly reconciled: boolean
}

export type Readiness = { readonly ready: boolean; readonly reason: string }

const seconds = (ms: number) => `${Math.round(ms / 1000)} s`

/** How long the catalog has lagged a settled version (ms), or 0. */
export const catalogLagMs = (status: PublisherStatus, now: number): number =>
  status.settledSince === undefined ? 0 : Math.max(0, now - status.settledSince)

/**
 * Ready when the service has reconciled the tree once in this run, the catalog file is there, no write fails,
 * and no version that settled waits longer than `staleAfterMs` to be published. `catalogOnDisk`: images.json
 * is a file now (looked at when asked, so that a catalog deleted by hand is seen at once).
 */
export const readiness = (report: ServiceReport | undefined, catalogOnDisk: boolean, now: number, staleAfterMs: number): Readiness => {
  if (report === undefined || !report.reconciled) return { ready: false, reason: "starting: the catalog of this run is not written yet" }
  const trouble = report.status.writeTrouble
  if (trouble !== undefined) {
    return { ready: false, reason: `cannot write the catalog since ${new Date(trouble.since).toISOString()} (${trouble.failures} failures): ${trouble.reason}` }
  }
  if (!catalogOnDisk) return { ready: false, reason: "images.json is missing" }
  const lag = catalogLagMs(report.status, now)
  if (lag > staleAfterMs) return { ready: false, reason: `the catalog lags: a version settled ${seconds(lag)} ago is not published yet (threshold ${seconds(staleAfterMs)})` }
  return { ready: true, reason: `ready: generation ${report.status.generation}, ${report.status.versions} versions` }
}
