/**
 * When a version is whole and quiet, pure: events are grouped per version folder, and a version is looked at
 * once no event touched it for the settle window and no file of it was modified within that window.
 */
import type { FoundPlan } from "../tree/Scanner.js"

/** The version folder (`os/release/arch/variant/version`) an event path belongs to, or "tree" for a path above. */
export const versionKeyOf = (path: string): string | "tree" => {
  const segments = path.split("/")
  return segments.length >= 5 ? segments.slice(0, 5).join("/") : "tree"
}

export interface Pending {
  /** When the first event of this burst came, for the time-to-publish log. */
  readonly first: number
  /** When the last event came. */
  readonly last: number
}

export const touch = (pending: ReadonlyMap<string, Pending>, key: string, now: number): Pending => ({
  first: pending.get(key)?.first ?? now,
  last: now
})

/** The keys whose last event is at least `settleMs` old. */
export const dueKeys = (pending: ReadonlyMap<string, Pending>, now: number, settleMs: number): ReadonlyArray<string> =>
  [...pending].filter(([, p]) => now - p.last >= settleMs).map(([k]) => k)

/**
 * No file of the version was modified within the settle window (a writer may be silent but not done). An mtime
 * in the future is no writer of this host (rsync -t from a host whose clock is ahead): events decide then.
 */
export const isQuiet = (plan: FoundPlan, now: number, settleMs: number): boolean =>
  [...plan.metadata, ...plan.rootfs].every((f) => now - f.mtimeMs >= settleMs || f.mtimeMs > now + 1000)

/** The latest modification time of the version's files. */
export const lastModified = (plan: FoundPlan): number =>
  Math.max(...[...plan.metadata, ...plan.rootfs].map((f) => f.mtimeMs))
