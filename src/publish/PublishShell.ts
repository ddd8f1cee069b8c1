/**
 * The effects around the Publisher, and no decisions: it carries out the commands (scan these folders, hash
 * this version, remember this, write the catalog, say this) and answers with what happened, until the
 * publisher has nothing more to do. `update` and `watch` run the same shell; they differ in whether a failed
 * write stops the run (`update`) or is tried again with backoff (`watch`), and in the memory they keep.
 */
import { Array, Clock, Effect, Either, Fiber, LogLevel } from "effect"
import { type AliasClaim, aliasClaimOf } from "../indexer/Catalog.js"
import { AliasBook } from "./AliasBook.js"
import type { Product } from "../simplestreams/Streams.js"
import { CatalogStore, type StreamsWriteError } from "../indexer/CatalogStore.js"
import type { CatalogText } from "../indexer/CatalogText.js"
import { VersionHasher } from "../indexer/VersionHasher.js"
import { followBytes, Progress, silentProgress } from "../progress/Progress.js"
import { type ImagesFolderError, Scanner } from "../tree/Scanner.js"
import { Generations } from "./Generations.js"
import type { Journal, WrittenCatalog } from "./Journal.js"
import { identityNow } from "../tree/IdentityNow.js"
import type { HashedVersion } from "../indexer/Catalog.js"
import type { Refusal } from "../tree/Layout.js"
import type { FoundPlan } from "../tree/Scanner.js"
import type { Command, Draft, Publisher } from "./Publisher.js"

export interface ShellSettings {
  /** Absolute. */
  readonly imagesDir: string
  readonly streamsDir: string
  /** `fail`: a catalog that cannot be written stops the run (update); `retry`: it is tried again (watch). */
  readonly onWriteFailure: "fail" | "retry"
  readonly journal?: Journal | undefined
  /**
   * What the catalog's text is rendered by and for (see RestoreText): with it, each generation tells the
   * journal the identity of the images.json it wrote, so that a restart can take the text from that file.
   */
  readonly renderKey?: string | undefined
  /**
   * A version folder the catalog must list to be written (`add`'s, on the whole-catalog route): without it
   * the run stops and writes nothing, so that a refused version changes nothing else.
   */
  readonly writeOnlyListing?: string | undefined
}

/** The files of versions and their bytes, as the scan saw them: what hashing them reads, for a progress line. */
export const planTotals = (plans: ReadonlyArray<FoundPlan>): { readonly files: number; readonly bytes: number } => {
  let files = 0
  let bytes = 0
  for (const p of plans) {
    for (const f of p.metadata) bytes += f.size
    for (const f of p.rootfs) bytes += f.size
    if (p.unified) bytes += p.unified.size
    files += p.metadata.length + p.rootfs.length + (p.unified ? 1 : 0)
  }
  return { files, bytes }
}

export const makePublishShell = (publisher: Publisher, text: CatalogText, settings: ShellSettings) =>
  Effect.gen(function* () {
    const scanner = yield* Scanner
    const versions = yield* VersionHasher
    const store = yield* CatalogStore
    const generations = yield* Generations
    const progress = yield* Progress
    /** A version hashed: its files, and its bytes but those the workers counted already (`followBytes`). */
    const advance = (plan: FoundPlan, onPool: boolean) => {
      const done = planTotals([plan])
      const counted = onPool && progress !== silentProgress ? versions.workerBytes(plan, publisher.compat) : 0
      return progress.advance(done.files, done.bytes - counted)
    }
    /** While the pool hashes, the bytes its workers read (see followBytes). */
    const followPoolBytes = followBytes(progress, versions.bytesRead)
    const toldClashes = new Set<string>()
    let hashedCount = 0
    const now = Clock.currentTimeMillis
    const join = (rel: string) => `${settings.imagesDir}/${rel}`

    /** Carries out the commands that need no answer; returns those that do. */
    const sayAndRemember = (commands: ReadonlyArray<Command>) =>
      Effect.gen(function* () {
        const rest: Array<Command> = []
        for (const c of commands) {
          if (c._tag === "Tell") yield* Effect.logWarning(`refused ${join(c.refusal.path)}: ${c.refusal.reason}`)
          else if (c._tag === "Log") yield* Effect.logWithLevel(logLevel(c.level), c.message)
          else if (c._tag === "Remember") {
            if (settings.journal) yield* settings.journal.remember(c.key, c.remembered)
          } else rest.push(c)
        }
        return rest
      })

    /** Each product's alias claim, and the aliases it was last rendered with. */
    const book = new AliasBook()
    const rendered = new Map<string, string>()
    let clashes: ReadonlyArray<string> = []
    /**
     * The catalog restored at start was rendered with every alias its products claim: their claims are read now,
     * while the file watcher crawls (1,000 products: 60 ms), not in the first publish; that publish then renders
     * again each product that keeps fewer.
     */
    const restored: Array<readonly [string, AliasClaim]> = []
    for (const pk of publisher.productKeys()) {
      const claim = publisher.aliasClaim(pk)
      if (!claim) continue
      restored.push([pk, claim])
      rendered.set(pk, claim.aliases.join(","))
    }
    let restoredAffected: ReadonlySet<string> | undefined = book.update(restored)
    /**
     * The products to render, each with the aliases it keeps: those of the draft, and any other whose aliases
     * change because a claim before it came or went.
     */
    const withOwnAliases = (changed: ReadonlyArray<string>): Map<string, Product | undefined> => {
      const fresh = new Map<string, Product | undefined>(changed.map((pk) => [pk, publisher.product(pk)]))
      const affected = new Set(restoredAffected)
      restoredAffected = undefined
      for (const pk of book.update([...fresh].map(([pk, product]) => [pk, product ? aliasClaimOf(pk, product) : undefined] as const))) affected.add(pk)
      clashes = book.clashes()
      for (const pk of affected) if (!fresh.has(pk) && book.kept(pk) !== rendered.get(pk)) fresh.set(pk, publisher.product(pk))
      const out = new Map<string, Product | undefined>()
      for (const [pk, product] of fresh) {
        const aliases = book.kept(pk)
        if (product === undefined || aliases === undefined) {
          rendered.delete(pk)
          out.set(pk, undefined)
        } else {
          rendered.set(pk, aliases)
          out.set(pk, { ...product, aliases })
        }
      }
      return out
    }

    /** images.json as it is now, just written from `text`, when the text's render key is known. */
    const writtenCatalog = (): WrittenCatalog | undefined => {
      if (settings.renderKey === undefined) return undefined
      const file = identityNow(`${settings.streamsDir}/images.json`, "images.json")
      return file && { file, key: settings.renderKey }
    }

    let held = false
    /**
     * Writes the catalog and records its generation, as one step that a stop waits for: a stop between the
     * write and the journal's line left a catalog on disk that the next start published again, under the
     * same generation number.
     */
    const commit = (draft: Draft): Effect.Effect<Array<Command>, StreamsWriteError> =>
      Effect.gen(function* () {
        if (settings.writeOnlyListing !== undefined && !publisher.catalogKeys().includes(settings.writeOnlyListing)) {
          held = true
          return []
        }
        for (const [pk, product] of withOwnAliases(draft.products)) {
          // every version was checked alone before it was accepted (Publisher.hashed), and a product's own
          // fields come from its newest version: a product of checked versions needs no second validation
          const set = text.setProduct(pk, product, { checked: true })
          if (Either.isLeft(set)) yield* Effect.logError(`product ${pk} left out of the catalog: ${set.left}`)
        }
        const written = yield* Effect.either(store.write(settings.streamsDir, text.files()))
        const at = yield* now
        if (Either.isLeft(written)) {
          if (settings.onWriteFailure === "fail") return yield* Effect.fail(written.left)
          return publisher.commitFailed(written.left.message, at)
        }
        const generation = publisher.committed(draft, at)
        const recovered = publisher.recovered
        if (recovered) yield* Effect.logInfo(`wrote the catalog again, after ${recovered.failures} failed attempt(s) since ${new Date(recovered.since).toISOString()}`)
        if (generation) {
          if (settings.journal) {
            yield* settings.journal.generation({
              number: generation.number,
              at,
              added: generation.added.map((a) => a.key),
              withdrawn: generation.withdrawn,
              images: writtenCatalog()
            })
          }
          yield* generations.publish(generation)
        }
        for (const clash of clashes) {
          if (!toldClashes.has(clash)) yield* Effect.logWarning(clash)
          toldClashes.add(clash)
        }
        return []
      }).pipe(Effect.uninterruptible)

    /** Scans each folder and tells the publisher what it holds. */
    const scan = (keys: ReadonlyArray<string>) =>
      Effect.forEach([...new Set(keys)], (key) => Effect.map(scanner.scanVersion(settings.imagesDir, key), (found) => [key, found] as const), {
        concurrency: 16
      }).pipe(
        Effect.flatMap((found) =>
          Effect.map(now, (at) => found.flatMap(([key, scanned]) => publisher.seen(key, scanned, at)))
        )
      )

    /** Hashes the versions at once on the worker pool, each answered as soon as it is done. */
    const hash = (commands: ReadonlyArray<Extract<Command, { _tag: "Hash" }>>) =>
      Effect.gen(function* () {
        const how = yield* versions.hashPlanFor(commands.map((c) => c.plan), publisher.compat)
        const next: Array<Command> = []
        const answer = (key: string, plan: FoundPlan, result: Either.Either<HashedVersion, Refusal>, moved: boolean) =>
          Effect.flatMap(now, (at) => sayAndRemember(publisher.hashed(key, plan, result, moved, at))).pipe(
            Effect.map((commands) => void next.push(...commands))
          )
        const onPool = ({ key, plan }: Extract<Command, { _tag: "Hash" }>) =>
          Effect.gen(function* () {
            hashedCount++
            const result = yield* Effect.either(versions.hashVersion(plan, how))
            yield* advance(plan, true)
            // bytes read from a file that was replaced or rewritten meanwhile are not that file's: again
            yield* answer(key, plan, result, !(yield* versions.stillSame(plan)))
          })
        // the large versions start at once on the worker pool; the small ones are hashed here, with no fiber
        // each, once xz has read their metadata (hashing meanwhile would keep this thread from reading xz's pipes)
        const [large, small] = Array.partition(commands, (c) => versions.isSmall(c.plan, publisher.compat))
        const pool = yield* Effect.fork(followPoolBytes(Effect.forEach(large, onPool, { concurrency: versions.workers + 2, discard: true })))
        const read = small.length > 0 ? yield* how.metadataRead : new Map()
        const rest: Array<Extract<Command, { _tag: "Hash" }>> = []
        const at = yield* now
        const answers: Array<Command> = []
        for (const c of small) {
          const hashes = versions.hashSmallFilesNow(c.plan, publisher.compat)
          const result = Either.isLeft(hashes) ? Either.left(hashes.left) : versions.assembleSmallNow(c.plan, publisher.compat, hashes.right, read)
          if (result === undefined) rest.push(c)
          else {
            hashedCount++
            yield* advance(c.plan, false)
            // bytes read from a file that was replaced or rewritten meanwhile are not that file's: again
            answers.push(...publisher.hashed(c.key, c.plan, result, !versions.stillSameNow(c.plan), at))
          }
        }
        next.push(...(yield* sayAndRemember(answers)))
        yield* Effect.forEach(rest, onPool, { concurrency: versions.workers + 2, discard: true })
        yield* Fiber.join(pool)
        return next
      })

    /** Runs commands, and what their answers bring, until the publisher has nothing due. */
    const run = (initial: ReadonlyArray<Command>): Effect.Effect<void, StreamsWriteError | ImagesFolderError> =>
      Effect.gen(function* () {
        let queue = yield* sayAndRemember(initial)
        for (;;) {
          if (queue.length === 0) queue = yield* sayAndRemember(publisher.tick(yield* now))
          if (queue.length === 0) return
          const scans = queue.flatMap((c) => (c._tag === "Scan" ? c.keys : []))
          const hashes = queue.filter((c): c is Extract<Command, { _tag: "Hash" }> => c._tag === "Hash")
          const drafts = queue.flatMap((c) => (c._tag === "Commit" ? [c.draft] : []))
          queue = []
          if (scans.length > 0) queue.push(...(yield* sayAndRemember(yield* scan(scans))))
          if (hashes.length > 0) queue.push(...(yield* hash(hashes)))
          // a commit drafted before other answers came is drafted again by the next tick
          if (drafts.length > 0 && queue.length === 0) queue.push(...(yield* sayAndRemember(yield* commit(drafts[drafts.length - 1]!))))
          if (held) return
        }
      })

    /** Versions hashed so far (the rest came from memory). */
    const hashed = () => hashedCount

    /**
     * Tells the journal that images.json was just written from the text with nothing uncommitted (a reconcile's
     * write), so that a restart may take the text from it.
     */
    const wroteWhole = Effect.suspend(() => (settings.journal ? settings.journal.wrote(writtenCatalog()) : Effect.void))

    return { run, hashed, wroteWhole } as const
  })

const logLevel = (level: Extract<Command, { _tag: "Log" }>["level"]): LogLevel.LogLevel =>
  level === "Debug" ? LogLevel.Debug : level === "Info" ? LogLevel.Info : level === "Warning" ? LogLevel.Warning : LogLevel.Error
