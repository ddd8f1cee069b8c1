/**
 * `status`'s reading, and nothing else: the pidfiles, the service's status.json, the catalog, a scan of the
 * tree (walk and stat, no hashing), the hidden upload folders, the withdrawals and the mirrors' states. Takes
 * no lock and writes nothing: it may run beside the service, as often as a monitor likes.
 */
import { FileSystem, Path } from "@effect/platform"
import { Clock, Effect, Option } from "effect"
import { catalogVersionDirs } from "../indexer/Catalog.js"
import { holderOf } from "../indexer/WriterLock.js"
import { runsThisProgram } from "../watch/Pidfile.js"
import type { MirrorTarget } from "../mirror/MirrorConfig.js"
import { readMirrorStatuses } from "../mirror/MirrorReport.js"
import { Deleter } from "../retention/Deleter.js"
import { hiddenFolders } from "../retention/Lifecycle.js"
import { readWithdrawals } from "../retention/WithdrawalLog.js"
import type { Images } from "../simplestreams/Streams.js"
import { planFiles, versionDir } from "../tree/Layout.js"
import { Scanner } from "../tree/Scanner.js"
import { primaryOf, readStatusFile } from "./StatusFile.js"
import type { StatusInputs } from "./StatusReport.js"

export interface ProbeOptions {
  readonly imagesDir: string
  readonly streamsDir: string
  /** The images folder relative to the web root, as item paths begin. */
  readonly imagesPath: string
  readonly stateDir: string
  /** The pidfiles the service (`watch` or `serve`) may hold, in the order they are looked at. */
  readonly pidfiles: ReadonlyArray<string>
  readonly mirrors: ReadonlyArray<MirrorTarget>
  readonly staleAfterMs: number
  readonly settleMs: number
  readonly graceMs: number
}

/** What `status` needs of images.json: its products' versions' items, by path and size. */
interface CatalogShape {
  readonly products: Readonly<Record<string, { readonly versions: Readonly<Record<string, { readonly items: Readonly<Record<string, { readonly path: string; readonly size: number }>> }>> }>>
}

/**
 * images.json's figures, pure: a plain parse (a tenth of the Schema decode's time at 10,000 versions; `verify`
 * is the one that checks the catalog), with only the shape the figures need checked.
 */
export const catalogFigures = (text: string, imagesPath: string) => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (e) {
    return { problem: `not JSON: ${(e as Error).message}` } as const
  }
  const isObject = (o: unknown): o is Record<string, unknown> => typeof o === "object" && o !== null
  const products = isObject(parsed) ? parsed["products"] : undefined
  const wellShaped =
    isObject(products) &&
    Object.values(products).every((p) => isObject(p) && isObject(p["versions"]) && Object.values(p["versions"]).every((v) => isObject(v) && isObject(v["items"])))
  if (!wellShaped) return { problem: "not a catalog: products, versions and items are not all there" } as const
  const catalog = parsed as CatalogShape
  // each file once: in `both` mode two items name one metadata file
  const sizes = new Map<string, number>()
  let versions = 0
  for (const p of Object.values(catalog.products)) {
    for (const v of Object.values(p.versions)) {
      versions++
      for (const item of Object.values(v.items)) if (typeof item.size === "number") sizes.set(item.path, item.size)
    }
  }
  let bytes = 0
  for (const size of sizes.values()) bytes += size
  return { products: Object.keys(catalog.products).length, versions, bytes, listed: catalogVersionDirs(catalog as unknown as Images, imagesPath) } as const
}

export const probeStatus = (o: ProbeOptions) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const scanner = yield* Scanner
    const deleter = yield* Deleter
    const now = yield* Clock.currentTimeMillis

    let service: StatusInputs["service"] = { pid: undefined, pidfile: undefined, looked: o.pidfiles }
    for (const pidfile of o.pidfiles) {
      const pid = yield* holderOf(fs, pidfile, runsThisProgram)
      if (pid !== undefined) {
        service = { ...service, pid, pidfile }
        break
      }
    }
    const statusFile = Option.getOrUndefined(yield* readStatusFile(o.stateDir))

    const imagesJson = path.join(o.streamsDir, "images.json")
    const catalog: StatusInputs["catalog"] = yield* Effect.gen(function* () {
      const info = yield* fs.stat(imagesJson)
      const figures = catalogFigures(yield* fs.readFileString(imagesJson), o.imagesPath)
      if ("problem" in figures) return { problem: `${imagesJson}: ${figures.problem}` }
      return { ...figures, writtenAt: Option.getOrElse(Option.map(info.mtime, (d) => d.getTime()), () => now) }
    }).pipe(
      Effect.catchAll((e) =>
        Effect.succeed({ problem: e._tag === "SystemError" && e.reason === "NotFound" ? `${imagesJson} does not exist` : e.message })
      )
    )

    const imagesDir = path.resolve(o.imagesDir)
    const scanned = yield* Effect.either(scanner.scan(imagesDir))
    const versions =
      scanned._tag === "Right"
        ? scanned.right.plans.map((plan) => ({ key: versionDir(plan.ref), changedAt: Math.max(...planFiles(plan).map((f) => f.ctimeMs)) }))
        : []
    const staging = yield* Effect.forEach(hiddenFolders(imagesDir), (rel) =>
      Effect.map(Effect.either(deleter.newestChange(imagesDir, rel)), (t) => ({ path: rel, changedAt: t._tag === "Right" ? t.right : undefined }))
    )
    const withdrawals = yield* readWithdrawals(o.stateDir).pipe(
      Effect.map((w) => [...w.values()]),
      Effect.catchAll((e) => Effect.as(Effect.logWarning(`${e.message}: pending deletions not shown`), []))
    )
    const mirrors = yield* readMirrorStatuses(o.mirrors, o.stateDir, statusFile && primaryOf(statusFile), now)
    return {
      now,
      staleAfterMs: o.staleAfterMs,
      settleMs: o.settleMs,
      graceMs: o.graceMs,
      service,
      statusFile,
      catalog,
      versions,
      treeRefusals: scanned._tag === "Right" ? scanned.right.refusals : [],
      treeProblem: scanned._tag === "Left" ? scanned.left.message : undefined,
      staging,
      withdrawals,
      mirrors
    } satisfies StatusInputs
  })
