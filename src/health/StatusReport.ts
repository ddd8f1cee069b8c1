/**
 * What `status` says, pure: the report built from what was read (the service's pidfile and status.json, the
 * catalog, a scan of the tree, the withdrawals, the mirrors), the rule that calls the catalog stale, the exit
 * code, and the text for people. The JSON is the report itself (snake_case, `format_version` 1).
 */
import { oneLine } from "../config/Logging.js"
import type { MirrorStatus } from "../mirror/MirrorState.js"
import { formatBytes } from "../progress/ProgressBar.js"
import type { Refusal } from "../tree/Layout.js"
import { versionKeyOf } from "../tree/VersionKey.js"
import type { WithdrawnVersion } from "../retention/WithdrawalLog.js"
import { dueAt } from "../retention/Retention.js"
import { type RefusalKind, refusalKind } from "./RefusalKind.js"
import type { StatusFile } from "./StatusFile.js"

/** 0: running and current; 1: the service is not running; 3: the catalog is missing, stale or cannot be checked (2 is bad input). */
export const statusExitCodes = { ok: 0, notRunning: 1, stale: 3 } as const

export interface StatusInputs {
  readonly now: number
  readonly staleAfterMs: number
  readonly settleMs: number
  readonly graceMs: number
  /** The pidfile naming a live process, if one does; the pidfiles looked at. */
  readonly service: { readonly pid: number | undefined; readonly pidfile: string | undefined; readonly looked: ReadonlyArray<string> }
  readonly statusFile: StatusFile | undefined
  /** images.json as read now, or why it could not be. */
  readonly catalog:
    | { readonly writtenAt: number; readonly products: number; readonly versions: number; readonly bytes: number; readonly listed: ReadonlySet<string> }
    | { readonly problem: string }
  /** The whole version folders of the tree (key relative to the images folder) and when their files last changed (ctime). */
  readonly versions: ReadonlyArray<{ readonly key: string; readonly changedAt: number }>
  /** What the scan of the tree refuses (layout rules), or why there was no scan. */
  readonly treeRefusals: ReadonlyArray<Refusal>
  readonly treeProblem: string | undefined
  /** Hidden folders (uploads being staged) and their newest change. */
  readonly staging: ReadonlyArray<{ readonly path: string; readonly changedAt: number | undefined }>
  readonly withdrawals: ReadonlyArray<WithdrawnVersion>
  readonly mirrors: ReadonlyArray<MirrorStatus>
}

const iso = (ms: number) => new Date(ms).toISOString()
const isoOrNull = (ms: number | undefined | null) => (ms === undefined || ms === null ? null : iso(ms))
const wholeSeconds = (ms: number) => Math.max(0, Math.round(ms / 1000))

export type UploadState = "staging" | "settling" | "waiting"

export interface StatusReport {
  readonly format_version: 1
  readonly generation: number
  readonly committed_at: string | null
  readonly written_at: string | null
  readonly age_seconds: number | null
  readonly products: number
  readonly versions: number
  readonly bytes: number
  readonly service: { readonly running: boolean; readonly pid: number | null; readonly pidfile: string | null }
  readonly stale_after_seconds: number
  readonly current: boolean
  readonly refused: ReadonlyArray<{ readonly path: string; readonly kind: RefusalKind; readonly reason: string }>
  readonly uploads: ReadonlyArray<{ readonly path: string; readonly state: UploadState; readonly changed_at: string | null; readonly waiting_seconds: number }>
  readonly pending_deletions: ReadonlyArray<{ readonly version: string; readonly withdrawn_at: string; readonly due_at: string; readonly reason: string }>
  readonly mirrors: ReadonlyArray<MirrorStatus>
  readonly write_error: StatusFile["write_error"]
  readonly problems: ReadonlyArray<string>
}

/**
 * The report. An upload is a whole version folder the catalog does not list, that nothing refused or withdrew:
 * `settling` while its files changed within the settle window, then `waiting` for the service to publish it.
 * The catalog is stale when it is missing, when an upload has waited longer than `staleAfterMs` since it
 * settled, or when catalog writes have failed for that long. Times of uploads are ctimes: rsync and tar keep
 * the source's mtimes, which can be days old; the ctime says when the file arrived here.
 */
export const statusReport = (i: StatusInputs): StatusReport => {
  const s = i.statusFile
  const refusals = new Map<string, Refusal>()
  for (const r of [...i.treeRefusals, ...(s?.refused ?? []).map((r) => ({ _tag: "Refusal" as const, ...r }))]) refusals.set(r.path, r)
  const refusedKeys = new Set([...refusals.keys()].map((p) => versionKeyOf(p) ?? p))
  // without a catalog, what waits for it cannot be told apart: the whole tree would be listed
  const listed = "listed" in i.catalog ? i.catalog.listed : undefined
  const uploads = [
    ...i.staging.map((f) => ({ path: f.path, state: "staging" as UploadState, changed_at: isoOrNull(f.changedAt), waiting_seconds: 0 })),
    ...i.versions
      .filter((v) => listed !== undefined && !listed.has(v.key) && !refusedKeys.has(v.key) && !i.withdrawals.some((w) => w.key === v.key))
      .map((v) => {
        const settled = v.changedAt + i.settleMs
        return { path: v.key, state: (settled > i.now ? "settling" : "waiting") as UploadState, changed_at: iso(v.changedAt), waiting_seconds: wholeSeconds(i.now - settled) }
      })
  ]
  // what keeps the catalog from being current (exit 3), apart from the service not running (exit 1)
  const stale: Array<string> = []
  if ("problem" in i.catalog) stale.push(`no catalog: ${i.catalog.problem}`)
  if (i.treeProblem !== undefined) stale.push(`cannot tell what the tree holds: ${i.treeProblem}`)
  const late = uploads.filter((u) => u.state === "waiting" && u.waiting_seconds * 1000 > i.staleAfterMs)
  if (late.length > 0) {
    const oldest = late.reduce((a, b) => (b.waiting_seconds > a.waiting_seconds ? b : a))
    stale.push(`the catalog is stale: ${late.length} settled upload(s) not published, ${oldest.path} for ${oldest.waiting_seconds} s (threshold ${wholeSeconds(i.staleAfterMs)} s)`)
  }
  const failingSince = s?.write_error ? Date.parse(s.write_error.since) : NaN
  if (s?.write_error && i.now - failingSince > i.staleAfterMs) {
    stale.push(`the catalog is stale: writing it has failed since ${s.write_error.since}: ${s.write_error.reason}`)
  }
  const notRunning = i.service.pid === undefined ? [`the service is not running: no live process in ${i.service.looked.join(" or ")}`] : []
  const writtenAt = "writtenAt" in i.catalog ? i.catalog.writtenAt : undefined
  return {
    format_version: 1,
    generation: s?.generation ?? 0,
    committed_at: s?.committed_at ?? null,
    written_at: isoOrNull(writtenAt),
    age_seconds: writtenAt === undefined ? null : wholeSeconds(i.now - writtenAt),
    products: "products" in i.catalog ? i.catalog.products : 0,
    versions: "versions" in i.catalog ? i.catalog.versions : 0,
    bytes: "bytes" in i.catalog ? i.catalog.bytes : 0,
    service: { running: i.service.pid !== undefined, pid: i.service.pid ?? null, pidfile: i.service.pidfile ?? null },
    stale_after_seconds: i.staleAfterMs / 1000,
    current: stale.length === 0,
    refused: [...refusals.values()].sort((a, b) => (a.path < b.path ? -1 : 1)).map((r) => ({ path: r.path, kind: refusalKind(r), reason: r.reason })),
    uploads,
    pending_deletions: [...i.withdrawals]
      .sort((a, b) => a.at - b.at)
      .map((w) => ({ version: w.key, withdrawn_at: iso(w.at), due_at: iso(dueAt(w, i.graceMs)), reason: w.reason })),
    mirrors: i.mirrors,
    write_error: s?.write_error ?? null,
    problems: [...notRunning, ...stale]
  }
}

export const statusExitCode = (r: StatusReport): number =>
  !r.service.running ? statusExitCodes.notRunning : r.current ? statusExitCodes.ok : statusExitCodes.stale

/** "42 s", "3 min", "5 h", "2 d". */
const span = (seconds: number) =>
  seconds < 120 ? `${seconds} s` : seconds < 7200 ? `${Math.round(seconds / 60)} min` : seconds < 172_800 ? `${Math.round(seconds / 3600)} h` : `${Math.round(seconds / 86_400)} d`

const ago = (at: string | null, now: number) => (at === null ? "unknown" : `${span(wholeSeconds(now - Date.parse(at)))} ago`)

/** The report for people: a line a topic, then the items, indented. */
export const statusText = (r: StatusReport, now: number): string => {
  const lines: Array<string> = []
  const head = (topic: string, text: string) => lines.push(`${topic.padEnd(12)} ${text}`)
  const item = (text: string) => lines.push(`  ${text}`)
  head("service", r.service.running ? `running (pid ${r.service.pid}, pidfile ${r.service.pidfile})` : "not running")
  head(
    "catalog",
    r.written_at === null
      ? "none"
      : `generation ${r.generation}, written ${r.written_at} (${ago(r.written_at, now)}): ${r.products} products, ${r.versions} versions, ${formatBytes(r.bytes)}`
  )
  head("current", r.current ? `yes (no settled upload waits longer than ${r.stale_after_seconds} s)` : "no")
  if (r.write_error) head("write error", `${r.write_error.reason} (since ${r.write_error.since}, ${r.write_error.failures} failures)`)
  head("uploads", r.uploads.length === 0 ? "none in progress" : `${r.uploads.length}`)
  for (const u of r.uploads) item(`${u.state.padEnd(9)} ${u.path}  changed ${ago(u.changed_at, now)}${u.state === "waiting" ? `, settled ${span(u.waiting_seconds)} ago` : ""}`)
  head("refused", r.refused.length === 0 ? "none" : `${r.refused.length}`)
  for (const x of r.refused) item(`${x.kind.padEnd(10)} ${x.path}: ${x.reason}`)
  head("deletions", r.pending_deletions.length === 0 ? "none pending" : `${r.pending_deletions.length} pending`)
  for (const d of r.pending_deletions) item(`${d.version}  due ${d.due_at} (withdrawn ${d.withdrawn_at}: ${d.reason})`)
  head("mirrors", r.mirrors.length === 0 ? "none configured" : "")
  for (const m of r.mirrors) {
    const lag = m.lag_generations === 0 ? "in step" : `${m.lag_generations} generation(s) behind for ${span(m.lag_seconds)}`
    item(`${m.name}  ${m.state}, generation ${m.generation ?? "-"}, ${lag}${m.last_error ? `: ${m.last_error}` : ""}`)
  }
  head("problems", r.problems.length === 0 ? "none" : "")
  for (const p of r.problems) item(p)
  // a path or reason may hold a newline or a terminal escape: one item, one line, as in the log
  return `${lines.map((l) => oneLine(l).trimEnd()).join("\n")}\n`
}
