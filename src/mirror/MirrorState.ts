/**
 * The state of one mirror's queue, as a value: which generation it has, which it should have, since when it is
 * behind, and its failures. Kept in the state folder as `mirrors/<name>.json` after every change, so that
 * `mirror status` (another process) can tell. The rules (coalescing, backoff, the status line) are pure.
 *
 * Two processes may push to one mirror (`watch` and `mirror push`): every change is applied to the state as the
 * file holds it now (read, changed and written under a lock of its own), never to a copy one of them read
 * earlier, and a push records its outcome while it still holds the mirror, so the last push recorded is the last
 * push made. The rules below merge accordingly: a generation pushed never goes back, and a pusher clears only
 * its own mark.
 */
import { Either, Schema } from "effect"

export const MirrorState = Schema.Struct({
  /** The generation the mirror serves (the last pushed whole), if any. */
  generation: Schema.NullOr(Schema.Int),
  pushed_at: Schema.NullOr(Schema.Number),
  /** The newest generation offered: what the next push sends (older ones are coalesced into it). */
  wanted: Schema.NullOr(Schema.Int),
  /** When the oldest generation the mirror lacks was committed. */
  behind_since: Schema.NullOr(Schema.Number),
  /** The pid of the process pushing now, if one is. */
  pushing: Schema.NullOr(Schema.Int),
  failures: Schema.Int,
  last_error: Schema.NullOr(Schema.String),
  retry_at: Schema.NullOr(Schema.Number),
  /** The products of the index.json last pushed: those leaving are taken out of the mirror's index first. */
  index_products: Schema.NullOr(Schema.Array(Schema.String))
})
export type MirrorState = typeof MirrorState.Type

export const initialState: MirrorState = {
  generation: null,
  pushed_at: null,
  wanted: null,
  behind_since: null,
  pushing: null,
  failures: 0,
  last_error: null,
  retry_at: null,
  index_products: null
}

const decode = Schema.decodeUnknownEither(Schema.parseJson(MirrorState))

/** The state in a file's text; a missing or unreadable file is a mirror never pushed to. */
export const parseState = (text: string | undefined): MirrorState =>
  text === undefined ? initialState : Either.getOrElse(decode(text), () => initialState)

export const stateText = (s: MirrorState): string => `${JSON.stringify(s, null, 2)}\n`

/** A generation committed on the primary: the mirror wants it (and only the newest of those it lacks). */
export const offered = (s: MirrorState, g: { readonly number: number; readonly at: number }): MirrorState => {
  const wanted = Math.max(s.wanted ?? g.number, g.number)
  const lacks = s.generation === null || g.number > s.generation
  return { ...s, wanted, behind_since: s.behind_since ?? (lacks ? g.at : null) }
}

export const started = (s: MirrorState, pid: number): MirrorState => ({ ...s, pushing: pid })

/** The mark of a push in progress, cleared by the pusher that set it (`pid`) and by no other. */
const clearPushing = (s: MirrorState, pid: number | undefined) => (pid === undefined || s.pushing === pid ? null : s.pushing)

/**
 * A push of `generation` (by the process `pid`) finished whole at `now`, and the mirror's index now names
 * `indexProducts`. Pushes to a mirror take turns and each sends the catalog as it is when its turn comes, so the
 * mirror holds at least the newest generation any push recorded: the generation never goes back.
 */
export const succeeded = (s: MirrorState, generation: number, now: number, indexProducts: ReadonlyArray<string>, pid?: number): MirrorState => {
  const pushed = Math.max(s.generation ?? generation, generation)
  const wanted = Math.max(s.wanted ?? pushed, pushed)
  return {
    ...s,
    generation: pushed,
    pushed_at: now,
    wanted,
    // a generation offered during the push is still to go: behind since the push began, at the latest
    behind_since: wanted > pushed ? Math.min(s.behind_since ?? now, now) : null,
    pushing: clearPushing(s, pid),
    failures: 0,
    last_error: null,
    retry_at: null,
    index_products: [...indexProducts]
  }
}

export interface Backoff {
  readonly baseMs: number
  readonly capMs: number
}

export const defaultBackoff: Backoff = { baseMs: 2_000, capMs: 300_000 }

/** The wait after the n-th failure in a row (n ≥ 1): doubling from the base, never above the cap. */
export const backoffMs = (failures: number, b: Backoff = defaultBackoff): number =>
  Math.min(b.capMs, b.baseMs * 2 ** Math.min(Math.max(failures - 1, 0), 30))

export const failed = (s: MirrorState, reason: string, now: number, b: Backoff = defaultBackoff, pid?: number): MirrorState => {
  const failures = s.failures + 1
  return { ...s, pushing: clearPushing(s, pid), failures, last_error: reason, retry_at: now + backoffMs(failures, b) }
}

/** A push (by `pid`) stopped from outside (SIGTERM, reload): nothing learned about the mirror. */
export const stopped = (s: MirrorState, pid?: number): MirrorState => ({ ...s, pushing: clearPushing(s, pid) })

/** A mark left by a pusher that is gone (killed): cleared, so that the mirror is not shown pushing forever. */
export const forgetDeadPusher = (s: MirrorState, alive: (pid: number) => boolean): MirrorState =>
  s.pushing !== null && !alive(s.pushing) ? { ...s, pushing: null } : s

export type MirrorStateName = "in-sync" | "pushing" | "failing"

/** One mirror as `mirror status --json` shows it. */
export interface MirrorStatus {
  readonly name: string
  readonly state: MirrorStateName
  readonly generation: number | null
  readonly lag_generations: number
  readonly lag_seconds: number
  readonly last_error: string | null
}

/**
 * The status of a mirror from its state and the primary's generation (from the primary's status.json, which
 * may be behind the mirror's own `wanted`). `pushingAlive` says whether the pusher the state names still runs:
 * a killed one leaves a stale pid. Pure.
 */
export const statusOf = (
  name: string,
  s: MirrorState,
  primary: { readonly generation: number; readonly at: number | null } | undefined,
  now: number,
  pushingAlive: boolean
): MirrorStatus => {
  const newest = Math.max(primary?.generation ?? 0, s.wanted ?? 0)
  const lag = Math.max(0, newest - (s.generation ?? 0))
  const since = s.behind_since ?? primary?.at ?? now
  const state: MirrorStateName =
    s.failures > 0 ? "failing" : lag > 0 || (s.pushing !== null && pushingAlive) || s.generation === null ? "pushing" : "in-sync"
  return {
    name,
    state,
    generation: s.generation,
    lag_generations: lag,
    lag_seconds: lag === 0 ? 0 : Math.max(0, Math.round((now - since) / 1000)),
    last_error: s.last_error
  }
}

/** The table `mirror status` prints for people. */
export const statusTable = (rows: ReadonlyArray<MirrorStatus>): string => {
  if (rows.length === 0) return "no mirrors configured (add [mirrors.NAME] tables to the config file)\n"
  const lines = rows.map((r) =>
    [
      r.name,
      r.state,
      r.generation === null ? "-" : String(r.generation),
      r.lag_generations === 0 ? "0" : `${r.lag_generations} (${r.lag_seconds} s)`,
      r.last_error ?? ""
    ]
  )
  const head = ["MIRROR", "STATE", "GENERATION", "LAG", "LAST ERROR"]
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)))
  return [head, ...lines].map((l) => l.map((c, i) => (i === l.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd()).join("\n") + "\n"
}
