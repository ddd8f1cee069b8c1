/**
 * One sync from an upstream server into the images tree, the effects only (the decisions are SyncPlan's): read
 * the upstream catalog, plan, look at what the local catalog and the disk hold, then for each version fetch the
 * missing files into a hidden staging folder beside its version folder (`.VERSION.sync`, which the watcher and
 * `update` skip), check every file's sha256 and size and every image's combined fingerprint, and only then rename
 * it into place. A part left by an interrupted run stays in the staging folder (named by the sha256 it must
 * have) and is continued with a Range request. One sync at a time per state folder (a lock), so that `watch`'s
 * syncs and a `sync` by hand never write one staging folder together. Publishing is the caller's.
 */
import { FileSystem, Path } from "@effect/platform"
import { Effect, Either } from "effect"
import { Hasher } from "../indexer/Hasher.js"
import { Indexer } from "../indexer/Indexer.js"
import { CatalogStore } from "../indexer/CatalogStore.js"
import { acquireWriterLock } from "../indexer/WriterLock.js"
import { Progress } from "../progress/Progress.js"
import { readEverWithdrawn } from "../retention/WithdrawalLog.js"
import { imageYamlName } from "../tree/ImageYaml.js"
import { versionDir } from "../tree/Layout.js"
import type { SyncFilters } from "./SyncFilter.js"
import {
  emptyLocalCatalog,
  type FileState,
  localCatalogOf,
  needOf,
  type PlannedFile,
  type PlannedImage,
  type PlannedVersion,
  planSync,
  toFetch
} from "./SyncPlan.js"
import { displayUrl, indexPath, parseCatalog, parseIndex, resolveUpstream, type UpstreamCatalog } from "./Upstream.js"
import { download, getText, type Trust, UpstreamError } from "./UpstreamHttp.js"

export interface SyncSource {
  /** The remote URL, as clients add it (it may hold `user:password@`). */
  readonly url: string
  readonly trust: Trust
  readonly filters: SyncFilters
  readonly keep?: number | undefined
}

export interface SyncFolders {
  readonly imagesDir: string
  readonly streamsDir: string
  readonly stateDir: string
}

/** A version to fetch, with the files it lacks here. */
export interface SyncWork {
  readonly version: PlannedVersion
  readonly images: ReadonlyArray<PlannedImage>
  readonly fetch: ReadonlyArray<PlannedFile>
  /** Its version folder exists already: the files join it one by one. */
  readonly joining: boolean
}

export interface SyncOutcome {
  /** Version folders placed or completed (relative to the images folder). */
  readonly placed: ReadonlyArray<string>
  readonly fetchedBytes: number
  /** Versions already here. */
  readonly present: number
  /**
   * Of those, the version folders whole here that the catalog does not list: a sync stopped between placing
   * them and publishing them (relative to the images folder). They are published like the ones placed.
   */
  readonly unpublished: ReadonlyArray<string>
  /** One line per failure, naming the URL or file and the reason. */
  readonly failures: ReadonlyArray<string>
  /** What was (or, with dry-run, would be) fetched. */
  readonly work: ReadonlyArray<SyncWork>
}

/** How many times a broken transfer is continued at once, before the next sync's turn. */
const transferRetries = 2

export const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`

const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`

/** The line that ends a sync. */
export const outcomeLine = (url: string, o: SyncOutcome, millis: number) =>
  `sync ${displayUrl(url)}: ${count(o.placed.length, "version")} fetched (${mib(o.fetchedBytes)} in ${(millis / 1000).toFixed(1)} s), ${o.present} here already, ${count(o.failures.length, "failure")}`

export class Syncer extends Effect.Service<Syncer>()("lxd-image-server/Syncer", {
  effect: Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const hasher = yield* Hasher
    const indexer = yield* Indexer
    const store = yield* CatalogStore
    const context = yield* Effect.context<FileSystem.FileSystem | Path.Path>()

    /** The upstream catalogs, in the order its index names them; a server that is not simplestreams fails. */
    const readUpstream = (source: SyncSource) =>
      Effect.gen(function* () {
        const indexUrl = resolveUpstream(source.url, indexPath)
        const paths = yield* Either.match(parseIndex(yield* getText(indexUrl, source.trust)), {
          onLeft: (reason) => Effect.fail(new UpstreamError({ url: indexUrl, reason: `not a simplestreams image server: ${reason}`, transient: false })),
          onRight: Effect.succeed
        })
        return yield* Effect.forEach(paths, (p) => {
          const url = resolveUpstream(source.url, p)
          return Effect.flatMap(getText(url, source.trust), (text) =>
            Either.match(parseCatalog(text), {
              onLeft: (reason) => Effect.fail(new UpstreamError({ url, reason: `not a simplestreams catalog: ${reason}`, transient: false })),
              onRight: (c): Effect.Effect<UpstreamCatalog> => Effect.succeed(c)
            })
          )
        })
      })

    /** The files of a version folder as they are here: by the local catalog when it vouches for them (same size), else hashed. */
    const filesHere = (dir: string, files: ReadonlyArray<PlannedFile>, vouched: ReadonlyMap<string, { readonly sha256: string; readonly size: number }>) =>
      Effect.forEach(files, (f) =>
        Effect.gen(function* () {
          const file = path.join(dir, f.name)
          const stat = yield* Effect.option(fs.stat(file))
          if (stat._tag === "None") return [f.name, { _tag: "Missing" }] as const
          const known = vouched.get(f.name)
          if (known !== undefined && known.size === Number(stat.value.size)) return [f.name, { _tag: "There", sha256: known.sha256 }] as const
          const hashed = yield* hasher.hash({ file, heads: [], own: true })
          return [f.name, { _tag: "There", sha256: hashed.own! }] as const
        })
      ).pipe(Effect.map((entries) => new Map<string, FileState>(entries)))

    /** Hidden, beside the version folder, on its file system: the parts stay here between runs. */
    const stagingOf = (target: string, version: string) => path.join(path.dirname(target), `.${version}.sync`)
    const partName = (f: PlannedFile) => `${f.sha256}.part`

    /**
     * Fetches a version's missing files, checks them and its images, and renames them into place. Answers the
     * failures (none: placed); a bad file is deleted and never lands, and its name is in the failure.
     */
    const fetchVersion = (source: SyncSource, imagesDir: string, work: SyncWork) =>
      Effect.gen(function* () {
        const progress = yield* Progress
        const v = work.version
        const target = path.join(imagesDir, versionDir(v.ref))
        const staging = stagingOf(target, v.ref.version)
        const fetched = new Map(work.fetch.map((f) => [f.name, f]))
        const where = (name: string) => {
          const f = fetched.get(name)
          return f === undefined ? path.join(target, name) : path.join(staging, partName(f))
        }
        const byName = new Map(v.files.map((f) => [f.name, f]))
        yield* fs.makeDirectory(staging, { recursive: true })

        let bytes = 0
        const failures: Array<string> = []
        for (const f of work.fetch) {
          const got = yield* download(f.url, where(f.name), f.size, source.trust, (n) => progress.advance(0, n)).pipe(
            Effect.retry({ times: transferRetries, while: (e) => e.transient }),
            Effect.either
          )
          yield* progress.advance(1, 0)
          if (got._tag === "Left") failures.push(got.left.message)
          else bytes += got.right
        }
        if (failures.length > 0) return { failures, bytes }

        // every file its sha256, every image its fingerprint: the metadata file's bytes, then the rootfs's
        const bad = new Set<string>()
        for (const image of work.images) {
          const [first, second] = image.files
          const files = [byName.get(first)!, ...(second === undefined ? [] : [byName.get(second)!])]
          const hashed = yield* hasher.hash({ file: where(files.at(-1)!.name), heads: second === undefined ? [] : [where(first)], own: true })
          const shas = second === undefined ? [hashed.own!] : [hashed.headShas[0]!, hashed.own!]
          files.forEach((f, i) => {
            if (shas[i] !== f.sha256 && !bad.has(f.name)) {
              bad.add(f.name)
              failures.push(`${displayUrl(f.url)}: sha256 is ${shas[i]}, the catalog says ${f.sha256}`)
            }
          })
          const fingerprint = second === undefined ? hashed.own! : hashed.combined[0]!
          if (fingerprint !== image.fingerprint && files.every((f) => !bad.has(f.name))) {
            for (const f of files) bad.add(f.name)
            failures.push(`${files.map((f) => displayUrl(f.url)).join(" + ")}: the image's fingerprint is ${fingerprint}, the catalog says ${image.fingerprint}`)
          }
        }
        if (failures.length > 0) {
          // a bad file is never kept, not even as a part: the next sync fetches it whole again
          for (const name of bad) if (fetched.has(name)) yield* fs.remove(where(name)).pipe(Effect.ignore)
          return { failures, bytes }
        }

        for (const f of work.fetch) yield* fs.rename(where(f.name), path.join(staging, f.name))
        if (work.joining) {
          // a version folder already published: each file joins it whole, by a rename
          for (const f of work.fetch) yield* fs.rename(path.join(staging, f.name), path.join(target, f.name))
          yield* fs.remove(staging, { recursive: true })
        } else {
          if (v.imageYaml !== undefined) yield* fs.writeFileString(path.join(staging, imageYamlName), v.imageYaml)
          // parts of files upstream no longer has (a version rebuilt there) do not come along
          const keep = new Set([...work.fetch.map((f) => f.name), imageYamlName])
          for (const name of yield* fs.readDirectory(staging)) if (!keep.has(name)) yield* fs.remove(path.join(staging, name), { recursive: true })
          yield* fs.rename(staging, target)
        }
        return { failures, bytes }
      })

    /** What to fetch: the plan against the local catalog and the disk; conflicts are failures. */
    const survey = (source: SyncSource, folders: SyncFolders) =>
      Effect.gen(function* () {
        const imagesDir = path.resolve(folders.imagesDir)
        const catalogs = yield* readUpstream(source)
        const imagesPath = yield* indexer.imagesPathFor({ imagesDir, streamsDir: folders.streamsDir, compat: "both" })
        const current = yield* store.readImages(folders.streamsDir)
        const local = current._tag === "Some" ? localCatalogOf(current.value, imagesPath) : emptyLocalCatalog
        const plan = planSync(catalogs, { remote: source.url, filters: source.filters, keep: source.keep, withdrawn: yield* readEverWithdrawn(folders.stateDir) })
        for (const s of plan.skipped) yield* Effect.logDebug(`sync ${displayUrl(source.url)}: not copied: ${s.what}: ${s.reason}`)
        const work: Array<SyncWork> = []
        const failures: Array<string> = []
        let present = 0
        const unpublished: Array<string> = []
        for (const v of plan.versions) {
          const need = needOf(v, local)
          const dir = versionDir(v.ref)
          if (need._tag === "Published") {
            present++
            continue
          }
          for (const e of need.elsewhere) yield* Effect.logDebug(`sync: ${v.product} ${v.version}: image ${e.fingerprint} is published here as ${e.dir} already: not copied twice`)
          const target = path.join(imagesDir, dir)
          const vouched = new Map([...local.files].flatMap(([rel, f]) => (rel.startsWith(`${dir}/`) ? [[rel.slice(dir.length + 1), f] as const] : [])))
          const { fetch, conflicts } = toFetch(need.files, yield* filesHere(target, need.files, vouched))
          if (conflicts.length > 0) {
            for (const c of conflicts) {
              failures.push(`${path.join(target, c.file.name)}: holds other bytes (sha256 ${c.sha256}) than ${displayUrl(c.file.url)} (${c.file.sha256}): a version name is never reused for other bytes`)
            }
            continue
          }
          if (fetch.length === 0) {
            present++
            unpublished.push(dir)
            continue
          }
          work.push({ version: v, images: need.images, fetch, joining: yield* fs.exists(target) })
        }
        const skipped = plan.skipped.length
        yield* Effect.logInfo(
          `sync ${displayUrl(source.url)}: ${count(plan.versions.length, "version")} wanted, ${work.length} to fetch (${mib(work.reduce((n, w) => n + w.fetch.reduce((m, f) => m + f.size, 0), 0))}), ${present} here already` +
            `${plan.filteredOut > 0 ? `, ${plan.filteredOut} filtered out` : ""}${plan.beyondKeep > 0 ? `, ${plan.beyondKeep} older than the newest ${source.keep}` : ""}` +
            `${plan.withdrawn > 0 ? `, ${plan.withdrawn} withdrawn here` : ""}${skipped > 0 ? `, ${skipped} upstream items not copied (--verbose lists them)` : ""}`
        )
        for (const dir of unpublished) yield* Effect.logDebug(`sync ${displayUrl(source.url)}: ${dir} is here whole but not in the catalog (a sync stopped before publishing it, or the catalog refused it)`)
        return { work, failures, present, unpublished }
      })

    /** One sync. Fails only when the upstream cannot be read at all (or the folders are wrong); a bad version is a failure line. */
    const run = (source: SyncSource, folders: SyncFolders, options: { readonly dryRun: boolean }) =>
      Effect.gen(function* () {
        yield* acquireWriterLock(path.join(folders.stateDir, "sync", "v1"), {
          onWait: (holder) => Effect.logInfo(`sync: waiting for ${holder === undefined ? "another process" : `process ${holder}`}, which is syncing`)
        })
        const { work, failures, present, unpublished } = yield* survey(source, folders)
        if (options.dryRun) return { placed: [], fetchedBytes: 0, present, unpublished, failures, work } satisfies SyncOutcome
        const progress = yield* Progress
        yield* progress.start(work.reduce((n, w) => n + w.fetch.length, 0), work.reduce((n, w) => n + w.fetch.reduce((m, f) => m + f.size, 0), 0))
        const placed: Array<string> = []
        let fetchedBytes = 0
        const imagesDir = path.resolve(folders.imagesDir)
        yield* Effect.forEach(work, (w) =>
          Effect.gen(function* () {
            const what = `${w.version.product} ${w.version.version}`
            const done = yield* fetchVersion(source, imagesDir, w).pipe(
              Effect.catchAll((e) => Effect.succeed({ failures: [`${path.join(imagesDir, versionDir(w.version.ref))}: ${e.message}`], bytes: 0 }))
            )
            fetchedBytes += done.bytes
            if (done.failures.length === 0) {
              placed.push(versionDir(w.version.ref))
              yield* Effect.logInfo(`sync: fetched ${what} into ${path.join(imagesDir, versionDir(w.version.ref))} (${w.images.map((i) => `${i.type} ${i.fingerprint}`).join(", ")})`)
              return
            }
            for (const line of done.failures) yield* Effect.logError(`${line} (${what} is not placed)`)
            failures.push(...done.failures)
          }),
          { discard: true }
        ).pipe(Effect.ensuring(progress.done()))
        return { placed, fetchedBytes, present, unpublished, failures, work } satisfies SyncOutcome
      }).pipe(Effect.scoped, Effect.provide(context))

    return { run } as const
  })
}) {}
