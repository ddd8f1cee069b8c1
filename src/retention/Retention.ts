/**
 * The retention rules, pure: which published versions a policy withdraws, and which withdrawn versions are due
 * for deletion. Values in, values out; the clock is an argument, so tests need no files and no waiting.
 *
 * A version's date is read from its folder name (YYYYMMDD, optionally _HH:MM or _HHMM, UTC): it is the build
 * date the uploader gave, the same on every mirror, unlike file times that a copy resets. A name with no
 * readable date is never withdrawn for its age, only by `keep`.
 */

export interface RetentionPolicy {
  /** Keep the newest N versions of every product (N ≥ 1); undefined: no count limit. */
  readonly keep?: number | undefined
  /** Withdraw versions older than this many days; undefined: no age limit. */
  readonly maxAgeDays?: number | undefined
}

/** A published version, as retention sees it. */
export interface PublishedVersion {
  /** The version folder under images/ (`os/release/arch/variant/version`). */
  readonly key: string
  /** `os:release:arch:variant`. */
  readonly product: string
  /** The version folder's name. */
  readonly version: string
}

export interface Withdrawal {
  readonly key: string
  readonly reason: string
}

const dayMs = 86_400_000

/** The time a version name gives (ms since the epoch, UTC), or undefined when it starts with no valid date. */
export const versionTime = (version: string): number | undefined => {
  const m = /^(\d{4})(\d{2})(\d{2})(?:[_T-]?(\d{2}):?(\d{2}))?/.exec(version)
  if (!m) return undefined
  const [, y, mo, d, h = "00", mi = "00"] = m
  const t = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi))
  const back = new Date(t)
  // 20241350 is no date: Date.UTC would roll it over into another
  if (back.getUTCFullYear() !== Number(y) || back.getUTCMonth() !== Number(mo) - 1 || back.getUTCDate() !== Number(d)) return undefined
  if (Number(h) > 23 || Number(mi) > 59) return undefined
  return t
}

/**
 * The versions a policy withdraws at `now`: beyond the newest `keep` of their product, or older than
 * `maxAgeDays`. The newest version of a product is never withdrawn, so a product never vanishes by retention.
 * Versions are ordered by name, as the catalog orders them.
 */
export const toWithdraw = (versions: ReadonlyArray<PublishedVersion>, policy: RetentionPolicy, now: number): ReadonlyArray<Withdrawal> => {
  if (policy.keep === undefined && policy.maxAgeDays === undefined) return []
  const byProduct = new Map<string, Array<PublishedVersion>>()
  for (const v of versions) byProduct.set(v.product, [...(byProduct.get(v.product) ?? []), v])
  const out: Array<Withdrawal> = []
  for (const list of byProduct.values()) {
    // newest first
    const sorted = [...list].sort((a, b) => (a.version < b.version ? 1 : a.version > b.version ? -1 : 0))
    sorted.forEach((v, i) => {
      if (i === 0) return
      if (policy.keep !== undefined && i >= policy.keep) {
        out.push({ key: v.key, reason: `retention: keep the newest ${policy.keep} version${policy.keep === 1 ? "" : "s"}` })
        return
      }
      const t = versionTime(v.version)
      if (policy.maxAgeDays !== undefined && t !== undefined && now - t > policy.maxAgeDays * dayMs) {
        out.push({ key: v.key, reason: `retention: older than ${policy.maxAgeDays} day${policy.maxAgeDays === 1 ? "" : "s"}` })
      }
    })
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : 1))
}

/** A withdrawn version whose files wait for the grace period. */
export interface PendingDeletion {
  readonly key: string
  /** When it was withdrawn (ms since the epoch). */
  readonly at: number
  /** The grace period it was withdrawn with (what its withdrawal said); none in records older than this field. */
  readonly graceMs?: number | undefined
}

/** When a pending deletion falls due: its own grace period, else `graceMs` (the reader's). */
export const dueAt = (p: PendingDeletion, graceMs: number): number => p.at + (p.graceMs ?? graceMs)

/** The pending deletions due at `now`, oldest first. */
export const dueDeletions = <P extends PendingDeletion>(pending: Iterable<P>, graceMs: number, now: number): ReadonlyArray<P> =>
  [...pending].filter((p) => now >= dueAt(p, graceMs)).sort((a, b) => a.at - b.at || (a.key < b.key ? -1 : 1))

/** When the next pending deletion falls due, if any. */
export const nextDeletion = (pending: Iterable<PendingDeletion>, graceMs: number): number | undefined => {
  let next: number | undefined
  for (const p of pending) next = Math.min(next ?? Infinity, dueAt(p, graceMs))
  return next
}

/** The newest modification time under a folder, against a dangling limit: old enough to delete. */
export const isDangling = (newestMtimeMs: number, danglingMs: number, now: number): boolean => now - newestMtimeMs >= danglingMs
