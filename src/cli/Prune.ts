/**
 * `prune` and `remove`: withdraw versions from the catalog at once (a new catalog, written under the writer
 * lock), keep their files on disk for the grace period (clients that still hold the old catalog can fetch
 * them), then delete them. The pending deletions are in the state folder, so the next `prune` or a running
 * `watch` carries them out, and neither `watch` nor `update` publishes a withdrawn version again.
 */
import { Args, Command, Options } from "@effect/cli"
import { Path } from "@effect/platform"
import { readFileSync } from "node:fs"
import { Clock, Effect, Option } from "effect"
import { writableStateDir } from "../config/StateDir.js"
import { pruneSetting, setting } from "../config/Settings.js"
import { CatalogStore } from "../indexer/CatalogStore.js"
import { CatalogText } from "../indexer/CatalogText.js"
import { Indexer } from "../indexer/Indexer.js"
import { WriterLock } from "../indexer/WriterLock.js"
import { Progress } from "../progress/Progress.js"
import { journalFileName, replay } from "../publish/Journal.js"
import { versionKeyOf } from "../tree/VersionKey.js"
import { type CatalogVersion, carryOutDeletions, catalogVersions, currentFiles, deleteDangling, recordWithdrawals, withdrawnTotals, withoutVersions } from "../retention/Lifecycle.js"
import { dueDeletions, toWithdraw, type Withdrawal } from "../retention/Retention.js"
import { readWithdrawals } from "../retention/WithdrawalLog.js"
import type { Compat } from "../simplestreams/Compat.js"
import type { Images } from "../simplestreams/Streams.js"
import { Scanner } from "../tree/Scanner.js"
import { UsageError } from "./Failure.js"
import { LoadedConfig } from "./Global.js"
import { lifecycleOptions, resolveFolders } from "./Update.js"

const hourMs = 3_600_000

/** A number of hours of at least 0 (`--grace`), or above 0 (`--dangling 0` would delete uploads going on). */
const hours = (flag: string, value: Option.Option<number>, zero: boolean) =>
  Option.isSome(value) && !(zero ? value.value >= 0 : value.value > 0)
    ? Effect.fail(new UsageError({ reason: `${flag} must be a number of hours ${zero ? "of at least 0" : "above 0"}, not ${value.value}` }))
    : Effect.void

const graceOption = Options.float("grace").pipe(
  Options.withDescription("Hours a withdrawn version's files stay on disk, still served, before they are deleted (default 6; config key prune.grace_hours)"),
  Options.optional
)
const danglingOption = Options.float("dangling").pipe(
  Options.withDescription("Also delete hidden upload folders and refused versions unchanged for this many hours (default off; config key prune.dangling_hours)"),
  Options.optional
)
const dryRunOption = Options.boolean("dry-run").pipe(Options.withDescription("Say what would be withdrawn and deleted, and change nothing"))

interface Run {
  readonly flags: Command.Command.ParseConfig<typeof lifecycleOptions> & {
    readonly grace: Option.Option<number>
    readonly dangling: Option.Option<number>
    readonly dryRun: boolean
  }
  /** What to withdraw, from the versions the catalog lists (not already withdrawn). */
  readonly select: (listed: ReadonlyArray<CatalogVersion>, withdrawn: ReadonlySet<string>, now: number) => Effect.Effect<ReadonlyArray<Withdrawal>, UsageError>
}

/** Withdraws, writes the catalog, deletes what is due and what dangles: all under the writer lock. */
const lifecycle = ({ flags, select }: Run) =>
  Effect.gen(function* () {
    yield* hours("--grace", flags.grace, true)
    yield* hours("--dangling", flags.dangling, false)
    const { file } = yield* LoadedConfig
    const folders = yield* resolveFolders(flags)
    const path = yield* Path.Path
    const graceHours = pruneSetting(file, "grace_hours", flags.grace) ?? 0
    const danglingHours = pruneSetting(file, "dangling_hours", flags.dangling)
    if (graceHours < 1) {
      yield* Effect.logWarning(`a grace period of ${graceHours} h is shorter than the hour clients may keep the old catalog: they may fail to download a pruned version`)
    }
    const indexer = yield* Indexer
    const imagesPath = yield* indexer.imagesPathFor(folders)
    const imagesDir = path.resolve(folders.imagesDir)
    const stateDir = yield* writableStateDir(setting(file, "state_dir", flags.stateDir))
    const store = yield* CatalogStore
    const lock = yield* WriterLock
    yield* Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const pending = yield* readWithdrawals(stateDir)
      const current = yield* store.readImages(folders.streamsDir)
      const images: Images = Option.getOrElse(current, () => ({ content_id: "images", datatype: "image-downloads", format: "products:1.0", products: {} }))
      const listed = catalogVersions(images, imagesPath).filter((v) => !pending.has(v.key))
      const chosen = yield* select(listed, new Set(pending.keys()), now)
      const graceMs = graceHours * hourMs
      // each withdrawal keeps the grace it was made with; a --grace given here is the operator's word for all
      const due = dueDeletions(Option.isSome(flags.grace) ? [...pending.values()].map((p) => ({ ...p, graceMs })) : pending.values(), graceMs, now)
      const withdrawnKeys = new Set([...pending.keys(), ...chosen.map((w) => w.key)])
      const dangling = (dryRun: boolean) =>
        danglingHours === undefined
          ? Effect.succeed([])
          : Effect.flatMap(refusedKeys(imagesDir, stateDir, folders.compat, listed, withdrawnKeys), (refused) => deleteDangling(imagesDir, refused, danglingHours * hourMs, now, dryRun))
      if (flags.dryRun) {
        for (const w of chosen) yield* Effect.logInfo(`would withdraw ${w.key} (${w.reason})`)
        for (const d of due) yield* Effect.logInfo(`would delete ${path.join(imagesDir, d.key)} (withdrawn ${new Date(d.at).toISOString()})`)
        const wouldDangle = yield* dangling(true)
        if (chosen.length + due.length + wouldDangle.length === 0) yield* Effect.logInfo("nothing to withdraw or delete")
        return
      }
      const withdrawals = yield* Effect.forEach(chosen, (w) => Effect.map(currentFiles(imagesDir, w.key), (files) => ({ ...w, files })))
      // the record first: a crash before the catalog is written leaves a withdrawal the next writer honours
      yield* recordWithdrawals(stateDir, withdrawals, now, graceMs)
      // without every pending withdrawal: a catalog another crash left behind is made right too
      if (Option.isSome(current)) yield* store.write(folders.streamsDir, CatalogText.of(withoutVersions(images, imagesPath, withdrawnKeys)).files(), { checkDisk: true })
      for (const w of chosen) yield* Effect.logInfo(`withdrew ${w.key} from the catalog (${w.reason}); its files are deleted after ${graceHours} h`)
      // the due ones were left out of the catalog just written (and of every one since their withdrawal)
      const progress = yield* Progress
      const totals = withdrawnTotals(due)
      if (due.length > 0) yield* progress.start(totals.files, totals.bytes)
      const { deleted } = yield* carryOutDeletions({ imagesDir, stateDir }, due, now).pipe(Effect.ensuring(progress.done()))
      const dangled = yield* dangling(false)
      const waiting = (yield* readWithdrawals(stateDir)).size
      yield* Effect.logInfo(`withdrew ${chosen.length} version(s), deleted ${deleted} withdrawn and ${dangled.length} dangling folder(s); ${waiting} wait for their grace period`)
    }).pipe(lock.withLock(folders.streamsDir))
  })

/**
 * Version folders that are refused: by the tree's rules (a scan), or when hashed (the service's journal
 * remembers those), and neither listed nor withdrawn.
 */
const refusedKeys = (imagesDir: string, stateDir: string, compat: Compat, catalog: ReadonlyArray<CatalogVersion>, withdrawn: ReadonlySet<string>) =>
  Effect.gen(function* () {
    const scanner = yield* Scanner
    const listed = new Set(catalog.map((v) => v.key))
    const scanned = yield* scanner.scan(imagesDir)
    const keys = new Set(scanned.refusals.flatMap((r) => versionKeyOf(r.path) ?? []))
    const journal = yield* Effect.sync(() => {
      try {
        return readFileSync(`${stateDir}/${journalFileName}`, "utf8")
      } catch {
        return ""
      }
    })
    for (const [key, r] of replay(journal, compat).state.memory) if (r._tag === "Refused") keys.add(key)
    return [...keys].filter((k) => !listed.has(k) && !withdrawn.has(k))
  })

export const prune = Command.make(
  "prune",
  {
    ...lifecycleOptions,
    keep: Options.integer("keep").pipe(Options.withDescription("Keep the newest N versions of every product (default 3; config key prune.keep)"), Options.optional),
    maxAge: Options.float("max-age").pipe(
      Options.withDescription("Withdraw versions older than this many days, by the date their folder name gives; never the newest of a product (default off; config key prune.max_age_days)"),
      Options.optional
    ),
    grace: graceOption,
    dangling: danglingOption,
    dryRun: dryRunOption
  },
  (flags) =>
    Effect.gen(function* () {
      if (Option.isSome(flags.keep) && flags.keep.value < 1) return yield* new UsageError({ reason: `--keep must be at least 1 (the newest version of a product always stays), not ${flags.keep.value}` })
      if (Option.isSome(flags.maxAge) && !(flags.maxAge.value > 0)) return yield* new UsageError({ reason: `--max-age must be a number of days above 0, not ${flags.maxAge.value}` })
      const { file } = yield* LoadedConfig
      const policy = { keep: pruneSetting(file, "keep", flags.keep), maxAgeDays: pruneSetting(file, "max_age_days", flags.maxAge) }
      yield* lifecycle({ flags, select: (listed, _withdrawn, now) => Effect.succeed(toWithdraw(listed, policy, now)) })
    })
).pipe(Command.withDescription("Withdraw old versions from the catalog, and delete the files of those withdrawn longer than the grace period ago"))

const fingerprintPattern = /^[0-9a-f]{12,64}$/

/** The versions named on the command line: `PRODUCT@VERSION` or a fingerprint (12 hex digits at least). */
const named = (args: ReadonlyArray<string>, listed: ReadonlyArray<CatalogVersion>, withdrawnKeys: ReadonlySet<string>) =>
  Effect.gen(function* () {
    const out = new Map<string, Withdrawal>()
    for (const arg of args) {
      const at = arg.lastIndexOf("@")
      const matches =
        at > 0
          ? listed.filter((v) => v.product === arg.slice(0, at) && v.version === arg.slice(at + 1))
          : fingerprintPattern.test(arg.toLowerCase())
            ? listed.filter((v) => v.fingerprints.some((f) => f.startsWith(arg.toLowerCase())))
            : undefined
      if (matches === undefined) return yield* new UsageError({ reason: `remove: ${JSON.stringify(arg)} is neither PRODUCT@VERSION (os:release:arch:variant@version) nor a fingerprint (at least 12 hex digits)` })
      if (matches.length > 1) return yield* new UsageError({ reason: `remove: fingerprint ${arg} matches ${matches.length} versions (${matches.map((m) => m.key).join(", ")}): give more digits` })
      const match = matches[0]
      if (match === undefined) {
        const key = at > 0 ? [...arg.slice(0, at).split(":"), arg.slice(at + 1)].join("/") : undefined
        if (key !== undefined && withdrawnKeys.has(key)) {
          yield* Effect.logInfo(`${arg} is withdrawn already; its files wait for the grace period`)
          continue
        }
        return yield* new UsageError({ reason: `remove: no published version ${at > 0 ? arg : `with fingerprint ${arg}`} in the catalog` })
      }
      out.set(match.key, { key: match.key, reason: `removed by hand (${arg})` })
    }
    return [...out.values()]
  })

export const remove = Command.make(
  "remove",
  {
    ...lifecycleOptions,
    grace: graceOption,
    dangling: danglingOption,
    dryRun: dryRunOption,
    versions: Args.text({ name: "PRODUCT@VERSION|FINGERPRINT" }).pipe(Args.atLeast(1))
  },
  (flags) =>
    Effect.gen(function* () {
      yield* lifecycle({
        flags,
        select: (listed, withdrawn) => named(flags.versions, listed, withdrawn)
      })
    })
).pipe(Command.withDescription("Withdraw the named versions from the catalog; their files are deleted after the grace period"))
