/**
 * The publisher's memory across restarts, in the state folder (never in the web root): what each version
 * folder's files gave when they were read (hashes or a refusal, keyed by the files' identities), which versions
 * the committed catalog lists, the generation number, and when each withdrawn version left.
 *
 * An append-only log of JSON lines: one event costs a few appended lines, never a rewrite of the whole state
 * (at 10,000 versions the old whole-file cache was 10 MB rewritten per event). It is compacted into a
 * snapshot, atomically, when it holds more than twice what is live. A line torn by a kill -9 is skipped.
 * Chosen over an embedded database because Node 20 has none built in and native modules are not installable
 * here; over per-product files because one event may touch many products and one fsync'd append is atomic.
 */
import { FileSystem, Path } from "@effect/platform"
import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from "node:fs"
import { Effect } from "effect"
import { writeFileAtomic } from "../indexer/AtomicFile.js"
import type { Compat } from "../simplestreams/Compat.js"
import { type FileIdentity, sameIdentity } from "../tree/Identity.js"
import type { Remembered, Restored } from "./Publisher.js"

export const journalFileName = "publisher.jsonl"
const format = "lxd-image-server/publisher"

type Line =
  | { readonly format: string; readonly compat: Compat }
  | { readonly remember: string; readonly what: Remembered }
  | { readonly forget: string }
  | {
      readonly generation: number
      readonly at: number
      readonly added: ReadonlyArray<string>
      readonly withdrawn: ReadonlyArray<string>
      readonly images?: WrittenCatalog
    }
  /** images.json written again without a generation (a start that found it stale): what it now holds. */
  | { readonly images: WrittenCatalog }
  | {
      readonly snapshot: number
      readonly at: number | undefined
      readonly catalog: ReadonlyArray<string>
      readonly withdrawnAt: Readonly<Record<string, number>>
    }

/**
 * images.json as a generation left it: the file's identity once written, and `key`, what its text was rendered
 * by and for (the build, the compat mode, the images path), so that a restart can take each product's text
 * from the file instead of rendering it again (see RestoreText).
 */
export interface WrittenCatalog {
  readonly file: FileIdentity
  readonly key: string
}

const sameWritten = (a: WrittenCatalog, b: WrittenCatalog) => a.key === b.key && sameIdentity(a.file, b.file)

export interface JournalState extends Restored {
  /** When each version withdrawn from the catalog left it (for a grace period before its files go). */
  readonly withdrawnAt: ReadonlyMap<string, number>
  /**
   * images.json as the last generation wrote it, when that generation said so and no snapshot came after it;
   * `touched`: the version folders remembered or forgotten since, whose products' text the file may not hold.
   */
  readonly written?: (WrittenCatalog & { readonly touched: ReadonlySet<string> }) | undefined
}

/** Replays the lines of a journal. Pure. Lines that do not parse (a torn last line) are skipped and counted. */
export const replay = (text: string, compat: Compat): { readonly state: JournalState; readonly skipped: number; readonly lines: number; readonly fresh: boolean } => {
  const memory = new Map<string, Remembered>()
  const catalog = new Set<string>()
  const withdrawnAt = new Map<string, number>()
  let generation = 0
  let committedAt: number | undefined
  let written: WrittenCatalog | undefined
  let touched = new Set<string>()
  let skipped = 0
  let lines = 0
  // one parse for the whole log when it is whole (at 10,000 versions a parse per line costs 0.3 s); line by
  // line when a torn line (a kill -9 during a write) must be skipped
  const rows = text.split("\n").filter((r) => r !== "")
  let parsed: Array<Line | undefined>
  try {
    parsed = JSON.parse(`[${rows.join(",")}]`) as Array<Line>
  } catch {
    parsed = rows.map((row) => {
      try {
        return JSON.parse(row) as Line
      } catch {
        return undefined
      }
    })
  }
  const empty = { state: { memory, catalog: [], generation, withdrawnAt }, skipped: 0, lines: 0, fresh: true }
  for (const [i, line] of parsed.entries()) {
    if (line === undefined) {
      skipped++
      continue
    }
    lines++
    if (i === 0) {
      // hashes made for another compat mode used other metadata files: start again
      if (!("format" in line) || line.format !== format || line.compat !== compat) return empty
      continue
    }
    if ("remember" in line) {
      memory.set(line.remember, line.what)
      touched.add(line.remember)
    } else if ("forget" in line) {
      memory.delete(line.forget)
      touched.add(line.forget)
    } else if ("generation" in line) {
      generation = line.generation
      committedAt = line.at
      written = line.images
      touched = new Set()
      for (const k of line.added) {
        catalog.add(k)
        withdrawnAt.delete(k)
      }
      for (const k of line.withdrawn) {
        catalog.delete(k)
        withdrawnAt.set(k, line.at)
      }
    } else if ("images" in line) {
      written = line.images
      touched = new Set()
    } else if ("snapshot" in line) {
      generation = line.snapshot
      committedAt = line.at
      written = undefined
      catalog.clear()
      for (const k of line.catalog) catalog.add(k)
      withdrawnAt.clear()
      for (const [k, at] of Object.entries(line.withdrawnAt)) withdrawnAt.set(k, at)
    }
  }
  if (lines === 0) return empty
  return {
    state: { memory, catalog: [...catalog], generation, committedAt, withdrawnAt, written: written && { ...written, touched } },
    skipped,
    lines,
    fresh: false
  }
}

/** What a snapshot holds. */
export interface LiveState {
  readonly memory: ReadonlyMap<string, Remembered>
  readonly catalog: ReadonlyArray<string>
  readonly generation: number
  readonly committedAt: number | undefined
}

export interface Journal {
  readonly state: JournalState
  readonly remember: (key: string, what: Remembered | undefined) => Effect.Effect<void>
  readonly generation: (g: {
    number: number
    at: number
    added: ReadonlyArray<string>
    withdrawn: ReadonlyArray<{ key: string; at: number }>
    /** images.json as this generation wrote it, when the writer can say by what it was rendered. */
    images?: WrittenCatalog | undefined
  }) => Effect.Effect<void>
  /**
   * images.json was written from a text that holds every product as the versions remembered render it, with
   * nothing uncommitted: recorded when it is not what the journal last recorded.
   */
  readonly wrote: (images: WrittenCatalog | undefined) => Effect.Effect<void>
  /** Rewrites the log as a snapshot when it holds more than twice what is live. */
  /** `remembered`: how many versions are live; `live` is asked for only when a compaction is due. */
  readonly compactIfDue: (remembered: number, live: () => LiveState) => Effect.Effect<void>
}

/**
 * Opens the journal of a state folder for the scope's life. A journal that cannot be written is a warning:
 * the service goes on, and a restart then hashes again what it cannot remember.
 */
export const openJournal = (stateDir: string, compat: Compat) =>
  Effect.gen(function* () {
    const path = yield* Path.Path
    const fs = yield* FileSystem.FileSystem
    const file = path.join(stateDir, journalFileName)
    yield* fs.makeDirectory(stateDir, { recursive: true }).pipe(Effect.ignore)
    const text = yield* Effect.sync(() => {
      try {
        return readFileSync(file, "utf8")
      } catch {
        return ""
      }
    })
    const replayed = replay(text, compat)
    if (replayed.skipped > 0) yield* Effect.logWarning(`${file}: skipped ${replayed.skipped} unreadable line(s) (a torn write?)`)
    if (replayed.fresh && text !== "") yield* Effect.logWarning(`${file}: made for another compat mode or version; every version is hashed again`)
    // the whole-file cache of earlier versions is not read any more
    yield* fs.remove(path.join(stateDir, "hashes.json")).pipe(Effect.ignore)
    const withdrawnAt = new Map(replayed.state.withdrawnAt)
    let lines = replayed.lines
    let fd: number | undefined
    let broken = false
    const header = JSON.stringify({ format, compat })
    /** images.json as the journal last recorded it (a compaction forgets it: see replay). */
    let lastWritten: WrittenCatalog | undefined = replayed.state.written

    const snapshotText = (live: LiveState) => {
      const rows = [header]
      for (const [key, what] of live.memory) if (what.files.length > 0) rows.push(JSON.stringify({ remember: key, what }))
      rows.push(JSON.stringify({ snapshot: live.generation, at: live.committedAt, catalog: live.catalog, withdrawnAt: Object.fromEntries(withdrawnAt) }))
      return { text: `${rows.join("\n")}\n`, count: rows.length }
    }

    const reopen = Effect.sync(() => {
      if (fd !== undefined) closeSync(fd)
      fd = openSync(file, "a", 0o644)
    })

    const append = (rows: ReadonlyArray<unknown>, sync: boolean) =>
      Effect.suspend(() => {
        if (broken) return Effect.void
        return Effect.try(() => {
          if (fd === undefined) fd = openSync(file, "a", 0o644)
          writeSync(fd, `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`)
          if (sync) fsyncSync(fd)
          lines += rows.length
        }).pipe(
          Effect.catchAll((e) => {
            broken = true
            return Effect.logWarning(`cannot write the state journal ${file}: ${String((e as { error?: unknown }).error ?? e)}; a restart will hash again what it cannot remember`)
          })
        )
      })

    // a fresh journal starts with its header (and the snapshot of nothing)
    if (replayed.fresh) {
      const first = snapshotText({ memory: new Map(), catalog: [], generation: 0, committedAt: undefined })
      yield* writeFileAtomic(file, first.text).pipe(Effect.catchAll((e) => Effect.logWarning(`cannot write the state journal ${file}: ${e.message}`)))
      lines = first.count
    }
    yield* Effect.addFinalizer(() => Effect.sync(() => fd !== undefined && closeSync(fd)))

    const journal: Journal = {
      state: { ...replayed.state, withdrawnAt },
      remember: (key, what) => append([what === undefined ? { forget: key } : { remember: key, what }], false),
      wrote: (images) => {
        if (images === undefined || (lastWritten !== undefined && sameWritten(lastWritten, images))) return Effect.void
        lastWritten = images
        return append([{ images }], false)
      },
      generation: (g) => {
        for (const w of g.withdrawn) withdrawnAt.set(w.key, w.at)
        for (const k of g.added) withdrawnAt.delete(k)
        lastWritten = g.images
        const line = { generation: g.number, at: g.at, added: g.added, withdrawn: g.withdrawn.map((w) => w.key) }
        return append([g.images === undefined ? line : { ...line, images: g.images }], true)
      },
      compactIfDue: (remembered, live) =>
        Effect.suspend(() => {
          if (broken || lines <= Math.max(1000, 2 * (remembered + 1))) return Effect.void
          const snap = snapshotText(live())
          return writeFileAtomic(file, snap.text).pipe(
            Effect.provideService(FileSystem.FileSystem, fs),
            Effect.provideService(Path.Path, path),
            Effect.zipRight(reopen),
            Effect.tap(() => Effect.sync(() => (lastWritten = undefined))),
            Effect.tap(() => Effect.sync(() => (lines = snap.count))),
            Effect.catchAll((e) => Effect.logWarning(`cannot compact the state journal ${file}: ${String(e)}`))
          )
        })
    }
    return journal
  })
