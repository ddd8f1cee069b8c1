/**
 * The publishing rules, as a state machine with no effects: what to do when a version folder is seen, settles,
 * is hashed, moves while being hashed, is refused or leaves. Its inputs are plain values and the time, its
 * outputs are commands (scan, hash, remember, commit, tell) that a thin shell carries out and answers. `update`
 * and `watch` both publish through it; only their shells differ (settle 0 and no memory for `update`).
 *
 * It holds, per version folder: what its files gave when they were last read (the hashed version or the
 * refusal, keyed by the files' identities, so that nothing is read twice while the files stay the same), the
 * catalog being built, and the catalog last committed. Each commit that changes the catalog is a generation.
 */
import { Either } from "effect"
import { type AliasClaim, aliasClaimOfVersions, checkVersion, fingerprints, type HashedVersion, productOf } from "../indexer/Catalog.js"
import type { Compat } from "../simplestreams/Compat.js"
import type { Product } from "../simplestreams/Streams.js"
import { type FileIdentity, justIdentity, sameIdentities, sameIdentity } from "../tree/Identity.js"
import { planFiles, type Refusal, refusal, versionDir } from "../tree/Layout.js"
import { versionKeyOf } from "../tree/VersionKey.js"
import type { FoundFile, FoundPlan, VersionScan } from "../tree/Scanner.js"
import { keepsImage, sameImageRefusal } from "./ImagePrecedence.js"

/** What the files of a version gave when they were last read: kept while they stay the same files. */
export type Remembered =
  | { readonly _tag: "Hashed"; readonly files: ReadonlyArray<FileIdentity>; readonly version: HashedVersion }
  | { readonly _tag: "Refused"; readonly files: ReadonlyArray<FileIdentity>; readonly refusal: Refusal }

/** A committed change of the catalog. */
export interface Generation {
  readonly number: number
  /** When it was committed (ms since the epoch). */
  readonly at: number
  readonly added: ReadonlyArray<{ readonly key: string; readonly version: HashedVersion; readonly since: number | undefined }>
  /** Versions that left the catalog, with the time they left: their files may still be fetched by clients. */
  readonly withdrawn: ReadonlyArray<{ readonly key: string; readonly at: number; readonly reason: string }>
}

/** What a commit would write: the products whose text changes, and what it adds and withdraws. */
export interface Draft {
  /** The generation it becomes, or the current one when the catalog's versions do not change. */
  readonly number: number
  readonly products: ReadonlyArray<string>
  readonly added: ReadonlyArray<string>
  readonly withdrawn: ReadonlyArray<string>
}

export type Command =
  /** Look at these version folders again and answer with `seen`. */
  | { readonly _tag: "Scan"; readonly keys: ReadonlyArray<string> }
  /** Read the metadata and hash the files of this plan, check they did not move, and answer with `hashed`. */
  | { readonly _tag: "Hash"; readonly key: string; readonly plan: FoundPlan }
  /** Keep this in the state folder (undefined: forget the key), so a restart reads nothing again. */
  | { readonly _tag: "Remember"; readonly key: string; readonly remembered: Remembered | undefined }
  /** Write the catalog (the products named, rendered from `product`) and answer with `committed` or `commitFailed`. */
  | { readonly _tag: "Commit"; readonly draft: Draft }
  /** Say once that this path is refused. */
  | { readonly _tag: "Tell"; readonly refusal: Refusal }
  | { readonly _tag: "Log"; readonly level: "Debug" | "Info" | "Warning" | "Error"; readonly message: string }

export interface PublisherOptions {
  readonly compat: Compat
  /** The images folder relative to the web root, as item paths begin. */
  readonly imagesPath: string
  /** A version is hashed once no file of it was modified for this long; 0 for `update`. */
  readonly settleMs: number
  /** Hashing attempts of a version that moves while it is hashed, before it is refused. */
  readonly maxAttempts?: number
}

/** What the publisher starts from: the memory and the catalog of an earlier run. */
export interface Restored {
  readonly memory: ReadonlyMap<string, Remembered>
  /** The version folders of the catalog last committed (their hashed versions are in `memory`). */
  readonly catalog: ReadonlyArray<string>
  readonly generation: number
  readonly committedAt?: number | undefined
}

export interface WriteTrouble {
  readonly since: number
  readonly failures: number
  readonly reason: string
  readonly retryAt: number
}

export interface PublisherStatus {
  readonly generation: number
  readonly committedAt: number | undefined
  readonly versions: number
  readonly products: number
  readonly refused: ReadonlyArray<Refusal>
  readonly settling: number
  /**
   * When the longest-waiting version not yet published had settled (its last change plus the settle window):
   * the catalog lags it from then on. Undefined when none waits.
   */
  readonly settledSince: number | undefined
  readonly writeTrouble: WriteTrouble | undefined
}

interface Pending {
  /** The first event of this burst, for the time-to-publish. */
  readonly first: number
  /** The last event or modification: the version is looked at once this is settle-old. */
  readonly last: number
  readonly attempts: number
  readonly hashing: boolean
}

/** Backoff of catalog writes that fail (a full disk, EIO): 1 s, 2 s, 4 s … up to a minute. */
export const writeBackoffMs = (failures: number): number => Math.min(60_000, 1000 * 2 ** Math.max(0, failures - 1))

/** The identities of a version's files (metadata, rootfs, sums): how the memory and the withdrawal record know them. */
export const filesOf = (plan: FoundPlan): ReadonlyArray<FileIdentity> => planFiles(plan).map(justIdentity)

/**
 * `sameIdentities(files, filesOf(plan))`, without making the plan's list: every version of every reconcile is
 * looked at this way (10,000 at each restart).
 */
export const sameFilesAs = (files: ReadonlyArray<FileIdentity>, plan: FoundPlan): boolean => {
  let i = 0
  const next = (f: FileIdentity) => i < files.length && sameIdentity(files[i++]!, f)
  return (
    plan.metadata.every(next) &&
    plan.rootfs.every(next) &&
    (plan.unified === undefined || next(plan.unified)) &&
    (plan.sums === undefined || next(plan.sums)) &&
    i === files.length
  )
}

/**
 * The version folders a version's symlinked files lead into, if any: like `sameFilesAs`, without making the
 * plan's list or a set, since every version of every reconcile is looked at (and almost none holds a link).
 */
const linkTargets = (plan: FoundPlan): ReadonlySet<string> | undefined => {
  let targets: Set<string> | undefined
  const add = (f: FoundFile | undefined) => {
    if (f?.linksInto !== undefined) (targets ??= new Set()).add(f.linksInto)
  }
  plan.metadata.forEach(add)
  plan.rootfs.forEach(add)
  add(plan.unified)
  add(plan.sums)
  return targets
}

/** A version folder withdrawn by `prune`, `remove` or retention: not published while it holds these files. */
export interface Withheld {
  readonly files: ReadonlyArray<FileIdentity>
  readonly reason: string
}

/** No file was modified within the settle window. An mtime in the future is no writer of this host: events decide then. */
const lastModified = (plan: FoundPlan, now: number): number =>
  Math.max(...planFiles(plan).map((f) => (f.mtimeMs > now + 1000 ? 0 : f.mtimeMs)))

const sameHashed = (a: HashedVersion, b: HashedVersion): boolean => a === b || JSON.stringify(a) === JSON.stringify(b)

/** The product key (`os:release:arch:variant`) of a version folder's key. */
export const productKeyOf = (key: string): string => key.split("/").slice(0, 4).join(":")

export class Publisher {
  private readonly memory = new Map<string, Remembered>()
  private readonly catalog = new Map<string, HashedVersion>()
  private readonly byProduct = new Map<string, Map<string, HashedVersion>>()
  /** Fingerprint → the version folder that lists it: one image is listed once. */
  private readonly owners = new Map<string, string>()
  /** A version left out because another lists the same image: taken in when that one leaves. */
  private readonly blockedBy = new Map<string, string>()
  private readonly inCommitted = new Map<string, HashedVersion | undefined>()
  private readonly dirty = new Set<string>()
  private readonly pending = new Map<string, Pending>()
  private readonly since = new Map<string, number>()
  /** What was said of each version folder ("" for paths above them), so that each refusal is said once. */
  private readonly told = new Map<string, Map<string, string>>()
  private readonly withdrawReason = new Map<string, string>()
  private withheld: ReadonlyMap<string, Withheld> = new Map()
  /** Version folder → the version folders with a symlinked file leading into it: an event there touches them too. */
  private readonly linkedFrom = new Map<string, Set<string>>()
  /** Version folder → the version folders its symlinked files lead into, as last seen. */
  private readonly linksOf = new Map<string, ReadonlySet<string>>()
  private generation: number
  private committedAt: number | undefined
  private trouble: WriteTrouble | undefined
  /** The trouble the last commit ended, for one line saying the catalog is written again. */
  recovered: WriteTrouble | undefined
  private readonly maxAttempts: number

  constructor(
    private readonly options: PublisherOptions,
    restored: Restored = { memory: new Map(), catalog: [], generation: 0 },
    /** Version folders of a catalog written by someone else (`update` reads images.json): they win ties. */
    incumbents: Iterable<string> = []
  ) {
    this.maxAttempts = options.maxAttempts ?? 3
    this.generation = restored.generation
    this.committedAt = restored.committedAt
    for (const [key, r] of restored.memory) this.memory.set(key, r)
    for (const key of restored.catalog) {
      const r = this.memory.get(key)
      if (r?._tag !== "Hashed") continue
      this.put(key, r.version)
      this.inCommitted.set(key, r.version)
    }
    this.dirty.clear()
    for (const key of incumbents) if (!this.inCommitted.has(key)) this.inCommitted.set(key, undefined)
  }

  // ---- inputs ----

  /**
   * The withdrawals in force now (all of them, replacing those given before). A listed version whose files are
   * the withdrawn ones leaves the catalog and stays out; one no longer listed (its files deleted or replaced)
   * is looked at again.
   */
  withhold(records: ReadonlyMap<string, Withheld>): Array<Command> {
    const out: Array<Command> = []
    const released = [...this.withheld.keys()].filter((key) => !records.has(key))
    this.withheld = records
    for (const [key, w] of records) {
      const known = this.memory.get(key)
      if (this.catalog.has(key) && known && sameIdentities(known.files, w.files)) this.withdraw(key, w.reason, out)
    }
    if (released.length > 0) out.push({ _tag: "Scan", keys: released })
    return out
  }

  /**
   * A file event under this version folder: it is looked at once it has been quiet for the settle window, and
   * so is every version folder with a symlinked file leading into it (its target may have changed or gone).
   */
  touched(key: string, at: number): void {
    this.touchOne(key, at)
    for (const from of this.linkedFrom.get(key) ?? []) this.touchOne(from, at)
  }

  private touchOne(key: string, at: number): void {
    const p = this.pending.get(key)
    if (p?.hashing) return
    this.pending.set(key, { first: p?.first ?? at, last: at, attempts: p?.attempts ?? 0, hashing: false })
  }

  /** Where the symlinked files of a version folder lead, as it holds them now (none when it is gone or refused). */
  private relink(key: string, plan: FoundPlan | undefined): void {
    const before = this.linksOf.get(key)
    const now = plan && linkTargets(plan)
    if (before === undefined && now === undefined) return
    for (const target of before ?? []) {
      const from = this.linkedFrom.get(target)
      from?.delete(key)
      if (from?.size === 0) this.linkedFrom.delete(target)
    }
    if (now === undefined) {
      this.linksOf.delete(key)
      return
    }
    this.linksOf.set(key, now)
    for (const target of now) {
      const from = this.linkedFrom.get(target) ?? new Set<string>()
      from.add(key)
      this.linkedFrom.set(target, from)
    }
  }

  /**
   * What one version folder holds now. `whole`: another writer published it (it listed the folder in a
   * catalog it wrote), so it is hashed now, not once its settle window has passed.
   */
  seen(key: string, scan: VersionScan, at: number, whole = false): Array<Command> {
    const out: Array<Command> = []
    if (scan._tag === "Absent") {
      this.relink(key, undefined)
      this.pending.delete(key)
      this.told.delete(key)
      this.blockedBy.delete(key)
      this.forget(key, out)
      this.withdraw(key, "its folder is gone or no longer whole", out)
      return out
    }
    if (scan._tag === "Refused") {
      // still arriving (an event within the settle window: a reconcile ran between an upload's files): looked at
      // again once quiet, and refused then if it still is; what was published of it stays until then
      const p = this.pending.get(key)
      if (p && !p.hashing && this.options.settleMs > 0 && at - p.last < this.options.settleMs) return out
      this.relink(key, undefined)
      // a rule of the tree: cheap to find again, so not kept across restarts
      this.pending.delete(key)
      this.blockedBy.delete(key)
      this.forget(key, out)
      this.memory.set(key, { _tag: "Refused", files: [], refusal: scan.refusal })
      this.tell(key, scan.refusal, out)
      this.withdraw(key, scan.refusal.reason, out)
      return out
    }
    const plan = scan.plan
    this.relink(key, plan)
    const held = this.withheld.get(key)
    if (held && sameFilesAs(held.files, plan)) {
      // withdrawn: its files stay on disk for the clients that still hold the old catalog, unlisted
      this.pending.delete(key)
      this.withdraw(key, held.reason, out)
      return out
    }
    const known = this.memory.get(key)
    const p = this.pending.get(key)
    if (known && sameFilesAs(known.files, plan)) {
      this.pending.delete(key)
      if (known._tag === "Hashed") this.accept(key, this.withImage(key, known, plan, out), p?.first, out)
      return out
    }
    const last = lastModified(plan, at)
    if (!whole && this.options.settleMs > 0 && at - last < this.options.settleMs) {
      // still being written: looked at again once quiet; what was published of it stays until then
      this.pending.set(key, { first: p?.first ?? at, last, attempts: p?.attempts ?? 0, hashing: false })
      return out
    }
    this.pending.set(key, { first: p?.first ?? at, last, attempts: p?.attempts ?? 0, hashing: true })
    out.push({ _tag: "Hash", key, plan })
    return out
  }

  /**
   * The whole tree, scanned: every version folder found, and the refusals of the scan. A version folder known
   * before and not found now is gone. `listedElsewhere`: the version folders another writer's catalog lists,
   * taken as whole (see `seen`).
   */
  treeSeen(found: ReadonlyArray<FoundPlan>, refusals: ReadonlyArray<Refusal>, at: number, listedElsewhere: ReadonlySet<string> = new Set()): Array<Command> {
    const out: Array<Command> = []
    const seenKeys = new Set<string>()
    for (const plan of found) {
      const key = versionDir(plan.ref)
      seenKeys.add(key)
      out.push(...this.seen(key, { _tag: "Plan", plan }, at, listedElsewhere.has(key)))
    }
    const treeLevel = new Map<string, string>()
    for (const r of refusals) {
      const key = versionKeyOf(r.path)
      if (key === undefined) {
        treeLevel.set(r.path, r.reason)
        continue
      }
      if (seenKeys.has(key)) continue
      seenKeys.add(key)
      out.push(...this.seen(key, { _tag: "Refused", refusal: r }, at))
    }
    // refusals above version folders (a symlinked product folder, an unreadable folder) are said once each
    const saidBefore = this.told.get("") ?? new Map<string, string>()
    for (const [path, reason] of treeLevel) {
      if (saidBefore.get(path) !== reason) out.push({ _tag: "Tell", refusal: refusal(path, reason) })
    }
    this.told.set("", treeLevel)
    for (const key of new Set([...this.memory.keys(), ...this.catalog.keys(), ...this.pending.keys()])) {
      if (!seenKeys.has(key)) out.push(...this.seen(key, { _tag: "Absent" }, at))
    }
    return out
  }

  /** The answer to a Hash command. `moved`: a file was not the same file after hashing as before. */
  hashed(key: string, plan: FoundPlan, result: Either.Either<HashedVersion, Refusal>, moved: boolean, at: number): Array<Command> {
    const out: Array<Command> = []
    const p = this.pending.get(key)
    const files = filesOf(plan)
    if (moved) {
      const attempts = (p?.attempts ?? 0) + 1
      if (attempts >= this.maxAttempts) {
        this.pending.delete(key)
        this.refuse(key, files, refusal(key, `its files kept changing while they were hashed (${attempts} times); it is tried again when they change`), out)
        return out
      }
      this.pending.set(key, { first: p?.first ?? at, last: at, attempts, hashing: false })
      out.push({ _tag: "Log", level: "Debug", message: `${key} changed while it was hashed: looked at again once quiet` })
      return out
    }
    this.pending.delete(key)
    if (Either.isLeft(result)) {
      this.refuse(key, files, result.left, out)
      return out
    }
    const invalid = checkVersion(result.right, this.options)
    if (invalid) {
      this.refuse(key, files, invalid, out)
      return out
    }
    this.memory.set(key, { _tag: "Hashed", files, version: result.right })
    out.push({ _tag: "Remember", key, remembered: this.memory.get(key) })
    this.accept(key, result.right, p?.first, out)
    return out
  }

  /** Time passes: the versions whose window settled are looked at again; then what changed is committed. */
  tick(at: number): Array<Command> {
    const due = [...this.pending].filter(([, p]) => !p.hashing && at - p.last >= this.options.settleMs).map(([k]) => k)
    if (due.length > 0) return [{ _tag: "Scan", keys: due }]
    if (this.dirty.size === 0 || (this.trouble && at < this.trouble.retryAt)) return []
    const draft = this.draft()
    if (draft === undefined) {
      this.dirty.clear()
      return []
    }
    return [{ _tag: "Commit", draft }]
  }

  /** The catalog of a draft is in place: it becomes the committed one. Returns the generation, if it was one. */
  committed(draft: Draft, at: number): Generation | undefined {
    const added = draft.added.map((key) => ({ key, version: this.catalog.get(key)!, since: this.since.get(key) }))
    const withdrawn = draft.withdrawn.map((key) => ({ key, at, reason: this.withdrawReason.get(key) ?? "withdrawn" }))
    for (const key of this.dirty) {
      const v = this.catalog.get(key)
      if (v) this.inCommitted.set(key, v)
      else this.inCommitted.delete(key)
      this.since.delete(key)
      this.withdrawReason.delete(key)
    }
    this.dirty.clear()
    this.recovered = this.trouble
    this.trouble = undefined
    this.committedAt = at
    if (draft.number === this.generation) return undefined
    this.generation = draft.number
    return { number: draft.number, at, added, withdrawn }
  }

  /** Writing the catalog failed: the committed catalog stays, and the write is tried again with backoff. */
  commitFailed(reason: string, at: number): Array<Command> {
    const failures = (this.trouble?.failures ?? 0) + 1
    // one error line per streak of failures (their texts differ by temp file name); the state shows the rest
    const first = this.trouble === undefined
    this.trouble = { since: this.trouble?.since ?? at, failures, reason, retryAt: at + writeBackoffMs(failures) }
    return [
      {
        _tag: "Log",
        level: first ? "Error" : "Debug",
        message: `cannot write the catalog (${reason}); the previous catalog stays; trying again in ${writeBackoffMs(failures) / 1000} s`
      }
    ]
  }

  // ---- reads ----

  get compat(): Compat {
    return this.options.compat
  }

  /** The product as the current catalog has it, or undefined when it has no version. */
  product(key: string): Product | undefined {
    const versions = this.byProduct.get(key)
    return versions && versions.size > 0 ? productOf([...versions.values()], this.options) : undefined
  }

  /** What the product claims of the alias space, as `aliasClaimOf` its product would say, without making it. */
  aliasClaim(key: string): AliasClaim | undefined {
    const versions = this.byProduct.get(key)
    return versions && versions.size > 0 ? aliasClaimOfVersions(key, [...versions.values()], this.options.compat) : undefined
  }

  /** Every product key of the current catalog. */
  productKeys(): ReadonlyArray<string> {
    return [...this.byProduct.keys()]
  }

  /** The hashed version of a folder, as remembered (listed or not). */
  remembered(key: string): Remembered | undefined {
    return this.memory.get(key)
  }

  /** Version folders of the current catalog. */
  catalogKeys(): ReadonlyArray<string> {
    return [...this.catalog.keys()]
  }

  /** Nothing waits: no version settling or being hashed, and nothing uncommitted. */
  idle(): boolean {
    return this.pending.size === 0 && this.dirty.size === 0
  }

  /** Something waits to be committed. */
  hasUncommitted(): boolean {
    return this.dirty.size > 0
  }

  /** The next time `tick` has work, if any. */
  nextDue(): number | undefined {
    let next: number | undefined
    for (const p of this.pending.values()) if (!p.hashing) next = Math.min(next ?? Infinity, p.last + this.options.settleMs)
    if (this.dirty.size > 0) next = Math.min(next ?? Infinity, this.trouble?.retryAt ?? 0)
    return next
  }

  memoryEntries(): ReadonlyMap<string, Remembered> {
    return this.memory
  }

  /** The number of the last generation (no walk over the versions, unlike `status`). */
  generationNumber(): number {
    return this.generation
  }

  /** The catalog last committed lists this version folder. */
  isCommitted(key: string): boolean {
    return this.inCommitted.get(key) !== undefined
  }

  committedKeys(): ReadonlyArray<string> {
    return [...this.inCommitted].filter(([, v]) => v !== undefined).map(([k]) => k)
  }

  status(): PublisherStatus {
    const refused: Array<Refusal> = []
    for (const [key, r] of this.memory) {
      if (r._tag === "Refused") refused.push(r.refusal)
      else if (this.blockedBy.has(key)) refused.push(refusal(key, `the same image as ${this.blockedBy.get(key)}`))
    }
    let settledSince: number | undefined
    for (const p of this.pending.values()) settledSince = Math.min(settledSince ?? Infinity, p.last + this.options.settleMs)
    return {
      generation: this.generation,
      committedAt: this.committedAt,
      versions: this.catalog.size,
      products: this.byProduct.size,
      refused,
      settling: this.pending.size,
      settledSince,
      writeTrouble: this.trouble
    }
  }

  // ---- rules ----

  private draft(): Draft | undefined {
    const added: Array<string> = []
    const withdrawn: Array<string> = []
    const products = new Set<string>()
    for (const key of this.dirty) {
      const now = this.catalog.get(key)
      const before = this.inCommitted.get(key)
      if (now && (before === undefined || !sameHashed(now, before))) added.push(key)
      if (!now && before) withdrawn.push(key)
      if (now !== before) products.add(productKeyOf(key))
    }
    if (products.size === 0) return undefined
    added.sort()
    withdrawn.sort()
    const changes = added.length > 0 || withdrawn.length > 0
    return { number: changes ? this.generation + 1 : this.generation, products: [...products].sort(), added, withdrawn }
  }

  /** Who keeps an image two version folders list (ImagePrecedence): the one in the committed catalog, else the first by folder. */
  private readonly isIncumbent = (key: string) => this.inCommitted.has(key)

  private accept(key: string, version: HashedVersion, first: number | undefined, out: Array<Command>) {
    const current = this.catalog.get(key)
    if (current && sameHashed(current, version)) {
      this.told.delete(key)
      return
    }
    for (const f of fingerprints(version)) {
      const owner = this.owners.get(f)
      if (owner === undefined || owner === key) continue
      if (keepsImage(owner, key, this.isIncumbent)) {
        // A fingerprint listed twice breaks every launch of it ("More than one match"): this one waits
        this.withdraw(key, `the same image as ${owner}`, out)
        this.blockedBy.set(key, owner)
        this.tell(key, sameImageRefusal(key, owner, f), out)
        return
      }
      this.withdraw(owner, `the same image as ${key}`, out, false)
      this.blockedBy.set(owner, key)
      this.tell(owner, sameImageRefusal(owner, key, f), out)
    }
    this.blockedBy.delete(key)
    this.told.delete(key)
    this.put(key, version)
    if (first !== undefined && !this.since.has(key)) this.since.set(key, first)
  }

  private put(key: string, version: HashedVersion) {
    const before = this.catalog.get(key)
    if (before) for (const f of fingerprints(before)) if (this.owners.get(f) === key) this.owners.delete(f)
    this.catalog.set(key, version)
    for (const f of fingerprints(version)) this.owners.set(f, key)
    const pk = productKeyOf(key)
    const versions = this.byProduct.get(pk) ?? new Map<string, HashedVersion>()
    versions.set(key, version)
    this.byProduct.set(pk, versions)
    this.dirty.add(key)
  }

  private withdraw(key: string, reason: string, out: Array<Command>, unblock = true) {
    const version = this.catalog.get(key)
    if (!version) return
    this.catalog.delete(key)
    for (const f of fingerprints(version)) if (this.owners.get(f) === key) this.owners.delete(f)
    const pk = productKeyOf(key)
    const versions = this.byProduct.get(pk)
    versions?.delete(key)
    if (versions?.size === 0) this.byProduct.delete(pk)
    this.dirty.add(key)
    this.withdrawReason.set(key, reason)
    if (!unblock) return
    // a version that waited behind this one for the same image is listed now
    for (const [blocked, owner] of [...this.blockedBy]) {
      if (owner !== key) continue
      this.blockedBy.delete(blocked)
      const r = this.memory.get(blocked)
      if (r?._tag === "Hashed") this.accept(blocked, r.version, undefined, out)
    }
  }

  /**
   * The remembered version with the image.yaml the folder holds now: the file is read with every look and is
   * no part of the files' identity, so an edit of it republishes without reading the images again.
   */
  private withImage(key: string, known: Extract<Remembered, { _tag: "Hashed" }>, plan: FoundPlan, out: Array<Command>): HashedVersion {
    if (JSON.stringify(known.version.image) === JSON.stringify(plan.image)) return known.version
    const { image: _, ...rest } = known.version
    const version: HashedVersion = plan.image ? { ...rest, image: plan.image } : rest
    this.memory.set(key, { ...known, version })
    out.push({ _tag: "Remember", key, remembered: this.memory.get(key) })
    return version
  }

  private refuse(key: string, files: ReadonlyArray<FileIdentity>, r: Refusal, out: Array<Command>) {
    this.memory.set(key, { _tag: "Refused", files, refusal: r })
    out.push({ _tag: "Remember", key, remembered: this.memory.get(key) })
    this.tell(key, r, out)
    this.withdraw(key, r.reason, out)
  }

  private forget(key: string, out: Array<Command>) {
    const r = this.memory.get(key)
    if (r && r.files.length > 0) out.push({ _tag: "Remember", key, remembered: undefined })
    this.memory.delete(key)
  }

  private tell(key: string, r: Refusal, out: Array<Command>) {
    const said = this.told.get(key) ?? new Map<string, string>()
    if (said.get(r.path) === r.reason) return
    said.clear()
    said.set(r.path, r.reason)
    this.told.set(key, said)
    out.push({ _tag: "Tell", refusal: r })
  }
}

