/**
 * The versions withdrawn by `prune`, `remove` or `watch`'s retention, whose files wait for the grace period:
 * `<state-dir>/withdrawn.jsonl`, append-only, one JSON line per event, shared by every writer (they all hold
 * the writer lock while they append). A withdrawal names the version folder and the identities of its files
 * when it was withdrawn: while the folder holds those very files it is not published again, by `watch` or by
 * `update`. A deletion done, or files replaced by a new upload, ends the record: the folder is new again.
 *
 * Kept apart from the publisher's journal because `update` and `prune` read it too, and they keep no journal.
 */
import { appendFileSync, closeSync, fsyncSync, openSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { Data, Effect } from "effect"
import type { FileIdentity } from "../tree/Identity.js"

export const withdrawalFileName = "withdrawn.jsonl"

export interface WithdrawnVersion {
  readonly key: string
  /** The files as they were when it was withdrawn (metadata first, then rootfs, as the scanner lists them). */
  readonly files: ReadonlyArray<FileIdentity>
  /** When it left the catalog (ms since the epoch): the grace period runs from here. */
  readonly at: number
  readonly reason: string
  /** The grace period it was withdrawn with, which its deletion keeps; absent in older records. */
  readonly graceMs?: number | undefined
}

export type WithdrawalLine =
  | { readonly withdraw: string; readonly files: ReadonlyArray<FileIdentity>; readonly at: number; readonly reason: string; readonly graceMs?: number }
  /** Its files were deleted. */
  | { readonly deleted: string; readonly at: number }
  /** The record ends without a deletion: the folder holds other files now (a new upload), or is gone. */
  | { readonly ended: string; readonly at: number; readonly reason: string }

/** The pending withdrawals a log's text leaves. Pure. A torn line (kill -9 during a write) is skipped. */
export const replayWithdrawals = (text: string): ReadonlyMap<string, WithdrawnVersion> => {
  const pending = new Map<string, WithdrawnVersion>()
  for (const row of text.split("\n")) {
    if (row.trim() === "") continue
    let line: WithdrawalLine
    try {
      line = JSON.parse(row) as WithdrawalLine
    } catch {
      continue
    }
    if ("withdraw" in line) {
      const grace = typeof line.graceMs === "number" ? { graceMs: line.graceMs } : {}
      pending.set(line.withdraw, { key: line.withdraw, files: line.files, at: line.at, reason: line.reason, ...grace })
    } else if ("deleted" in line) pending.delete(line.deleted)
    else if ("ended" in line) pending.delete(line.ended)
  }
  return pending
}

export const withdrawalFile = (stateDir: string) => join(stateDir, withdrawalFileName)

/**
 * Every version folder a log ever withdrew, deleted since or not: what `sync` never fetches again (a version
 * pruned here would otherwise come back from upstream at the next sync). Pure; torn lines are skipped.
 */
export const everWithdrawn = (text: string): ReadonlySet<string> => {
  const keys = new Set<string>()
  for (const row of text.split("\n")) {
    try {
      const line = JSON.parse(row) as Partial<{ withdraw: unknown }>
      if (typeof line.withdraw === "string") keys.add(line.withdraw)
    } catch {
      // a torn or empty line
    }
  }
  return keys
}

/** The log's text read through `replay`; an empty log when there is none yet. One that cannot be read fails. */
const readLog = <A>(stateDir: string, replay: (text: string) => A) =>
  Effect.try({
    try: () => {
      let text = ""
      try {
        text = readFileSync(withdrawalFile(stateDir), "utf8")
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e
      }
      return replay(text)
    },
    catch: (e) => new WithdrawalLogError({ path: withdrawalFile(stateDir), reason: `cannot read: ${(e as Error).message}` })
  })

/**
 * The pending withdrawals of a state folder; none when it has no log yet. A log that exists and cannot be read
 * fails: read as empty, it would let withdrawn versions be published again.
 */
export const readWithdrawals = (stateDir: string) => readLog(stateDir, replayWithdrawals)

/** `everWithdrawn` of a state folder's log; none when it has no log yet. */
export const readEverWithdrawn = (stateDir: string) => readLog(stateDir, everWithdrawn)

/** Changes whenever the log is appended to: a writer reads it again only then. */
export const withdrawalStamp = (stateDir: string) =>
  Effect.sync(() => {
    try {
      const s = statSync(withdrawalFile(stateDir))
      return `${s.ino}:${s.size}:${s.mtimeMs}`
    } catch {
      return "none"
    }
  })

/** The withdrawal log cannot be read or written. */
export class WithdrawalLogError extends Data.TaggedError("WithdrawalLogError")<{ readonly path: string; readonly reason: string }> {
  override get message() {
    return `${this.path}: ${this.reason}`
  }
}

/** Appends lines and syncs them to disk before the catalog changes: a withdrawal is never lost to a crash. */
export const appendWithdrawals = (stateDir: string, lines: ReadonlyArray<WithdrawalLine>) =>
  Effect.try({
    try: () => {
      if (lines.length === 0) return
      const file = withdrawalFile(stateDir)
      appendFileSync(file, `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`, { mode: 0o644 })
      const fd = openSync(file, "r")
      try {
        fsyncSync(fd)
      } finally {
        closeSync(fd)
      }
    },
    catch: (e) => new WithdrawalLogError({ path: withdrawalFile(stateDir), reason: `cannot write: ${(e as Error).message}` })
  })
