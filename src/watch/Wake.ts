/**
 * When the idle service looks again: at the first deadline it knows of (a version's settle window, a tree
 * reconcile, the timer, a deletion, a write retry), and at least every `pollMs` for what only a look can tell
 * (another writer's catalog, new withdrawals). Pure. Waking at the deadline itself, rather than on a short fixed
 * tick, publishes on time and costs an idle service next to no CPU.
 */
export const pollMs = 1000

/** The shortest wait, so that a deadline the loop cannot clear at once never makes it spin. */
export const minWaitMs = 50

/** Milliseconds to wait from `now`: until the earliest deadline, at least `minWaitMs`, at most `poll`. */
export const waitBeforeNextLook = (now: number, deadlines: ReadonlyArray<number | undefined>, poll: number = pollMs): number => {
  let next = now + poll
  for (const d of deadlines) if (d !== undefined && d < next) next = d
  return Math.max(minWaitMs, Math.min(poll, next - now))
}
