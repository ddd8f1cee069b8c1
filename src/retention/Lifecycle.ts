/**
 * The effects of the lifecycle after publishing, and no decisions (those are in Retention.ts): record
 * withdrawals, carry out the deletions whose grace period has passed, and delete dangling uploads. `prune`,
 * `remove` and `watch` share these; each caller holds the writer lock around them, and makes sure the catalog
 * no longer lists a version before its files are deleted.
 */
import { readdirSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { Progress } from "../progress/Progress.js"
import type { Images } from "../simplestreams/Streams.js"
import { versionImages } from "../simplestreams/VersionImages.js"
import type { FileIdentity } from "../tree/Identity.js"
import { Scanner } from "../tree/Scanner.js"
import { filesOf } from "../publish/Publisher.js"
import { Deleter } from "./Deleter.js"
import { isDangling, type PublishedVersion } from "./Retention.js"
import { appendWithdrawals, type WithdrawalLine, type WithdrawnVersion } from "./WithdrawalLog.js"

export interface LifecycleFolders {
  /** Absolute. */
  readonly imagesDir: string
  readonly stateDir: string
}

/** A published version of a written catalog, with its fingerprints (for `remove FINGERPRINT`). */
export interface CatalogVersion extends PublishedVersion {
  readonly fingerprints: ReadonlyArray<string>
}

/** The versions a written catalog lists, by their item paths. Pure. */
export const catalogVersions = (images: Images, imagesPath: string): ReadonlyArray<CatalogVersion> =>
  Object.entries(images.products).flatMap(([product, p]) =>
    Object.entries(p.versions).flatMap(([version, v]) => {
      const items = Object.values(v.items)
      const path = items[0]?.path
      if (!path?.startsWith(`${imagesPath}/`)) return []
      const key = path.slice(imagesPath.length + 1, path.lastIndexOf("/"))
      const fingerprints = [...new Set(versionImages(v.items).map((i) => i.fingerprint))]
      return [{ key, product, version, fingerprints }]
    })
  )

/** The catalog without these version folders; a product left with no version leaves too. Pure. */
export const withoutVersions = (images: Images, imagesPath: string, keys: ReadonlySet<string>): Images => {
  const gone = new Set(catalogVersions(images, imagesPath).filter((v) => keys.has(v.key)).map((v) => `${v.product}\u0000${v.version}`))
  if (gone.size === 0) return images
  const products: Record<string, Images["products"][string]> = {}
  for (const [key, p] of Object.entries(images.products)) {
    const versions = Object.fromEntries(Object.entries(p.versions).filter(([v]) => !gone.has(`${key}\u0000${v}`)))
    if (Object.keys(versions).length > 0) products[key] = { ...p, versions }
  }
  return { ...images, products }
}

/** The files of a version folder as they are now (none when it is not whole): what its withdrawal records. */
export const currentFiles = (imagesDir: string, key: string) =>
  Effect.gen(function* () {
    const scanner = yield* Scanner
    const scanned = yield* scanner.scanVersion(imagesDir, key).pipe(Effect.orElseSucceed(() => ({ _tag: "Absent" }) as const))
    return scanned._tag === "Plan" ? filesOf(scanned.plan) : ([] as ReadonlyArray<FileIdentity>)
  })

/**
 * Records withdrawals (synced to disk before the catalog changes), with the grace period they were withdrawn
 * with: whoever deletes their files later (`watch`, `prune`) keeps it, whatever grace it has itself.
 */
export const recordWithdrawals = (
  stateDir: string,
  withdrawals: ReadonlyArray<{ readonly key: string; readonly files: ReadonlyArray<FileIdentity>; readonly reason: string }>,
  at: number,
  graceMs: number
) => appendWithdrawals(stateDir, withdrawals.map((w): WithdrawalLine => ({ withdraw: w.key, files: w.files, at, reason: w.reason, graceMs })))

const filesBytes = (files: ReadonlyArray<FileIdentity>) => files.reduce((n, f) => n + f.size, 0)

/** The files and bytes withdrawn versions hold, as their withdrawal recorded them: a deletion's progress. */
export const withdrawnTotals = (due: ReadonlyArray<WithdrawnVersion>) => ({
  files: due.reduce((n, w) => n + w.files.length, 0),
  bytes: due.reduce((n, w) => n + filesBytes(w.files), 0)
})

/**
 * Deletes the files of these due withdrawals, none of which the catalog lists any more. A deletion done (or
 * found done, or made moot by a new upload) ends its record; one that fails is logged and tried again later.
 * Returns how many were deleted and how many failed. Each version looked at advances the progress line.
 */
export const carryOutDeletions = (folders: LifecycleFolders, due: ReadonlyArray<WithdrawnVersion>, at: number) =>
  Effect.gen(function* () {
    const deleter = yield* Deleter
    const progress = yield* Progress
    const lines: Array<WithdrawalLine> = []
    let failed = 0
    for (const w of due) {
      const outcome = yield* Effect.either(deleter.deleteVersion(folders.imagesDir, w.key, w.files))
      yield* progress.advance(w.files.length, filesBytes(w.files))
      if (outcome._tag === "Left") {
        yield* Effect.logWarning(`${outcome.left.message}; tried again later`)
        failed++
        continue
      }
      if (outcome.right === "deleted") {
        yield* Effect.logInfo(`deleted ${join(folders.imagesDir, w.key)}: withdrawn ${new Date(w.at).toISOString()} (${w.reason}), grace period over`)
        lines.push({ deleted: w.key, at })
      } else if (outcome.right === "gone") {
        lines.push({ ended: w.key, at, reason: "its folder was gone" })
      } else {
        yield* Effect.logWarning(`kept ${join(folders.imagesDir, w.key)}: it holds other files than those withdrawn (a new upload), so it is new`)
        lines.push({ ended: w.key, at, reason: "new files under the same name" })
      }
    }
    yield* appendWithdrawals(folders.stateDir, lines).pipe(Effect.catchAll((e) => Effect.logWarning(`${e.message}; the deletions are done, and will be found done again`)))
    return { deleted: lines.filter((l) => "deleted" in l).length, failed }
  })

/**
 * Hidden folders below the images folder (uploads in progress, or abandoned) down to the version level,
 * relative to it. Symlinks are not followed.
 */
export const hiddenFolders = (imagesDir: string): ReadonlyArray<string> => {
  const found: Array<string> = []
  const walk = (dir: string, rel: ReadonlyArray<string>) => {
    if (rel.length >= 5) return
    let entries
    try {
      entries = readdirSync(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue
      if (e.name.startsWith(".")) found.push([...rel, e.name].join("/"))
      else walk(join(dir, e.name), [...rel, e.name])
    }
  }
  walk(imagesDir, [])
  return found.sort()
}

/**
 * Deletes hidden folders and refused version folders (`refused`, relative) that nothing changed in for
 * `danglingMs`. `dryRun`: only says what it would delete. Returns the folders (to be) deleted.
 */
export const deleteDangling = (imagesDir: string, refused: ReadonlyArray<string>, danglingMs: number, at: number, dryRun: boolean) =>
  Effect.gen(function* () {
    const deleter = yield* Deleter
    const out: Array<string> = []
    for (const rel of [...new Set([...hiddenFolders(imagesDir), ...refused])].sort()) {
      const newest = yield* Effect.either(deleter.newestChange(imagesDir, rel))
      if (newest._tag === "Left") {
        yield* Effect.logWarning(`${newest.left.message}; tried again later`)
        continue
      }
      if (newest.right === undefined || !isDangling(newest.right, danglingMs, at)) continue
      const hours = ((at - newest.right) / 3_600_000).toFixed(1)
      if (dryRun) {
        yield* Effect.logInfo(`would delete dangling ${join(imagesDir, rel)} (unchanged for ${hours} h)`)
        out.push(rel)
        continue
      }
      const done = yield* Effect.either(deleter.deleteFolder(imagesDir, rel))
      if (done._tag === "Left") yield* Effect.logWarning(`${done.left.message}; tried again later`)
      else if (done.right === "deleted") {
        yield* Effect.logInfo(`deleted dangling ${join(imagesDir, rel)} (unchanged for ${hours} h)`)
        out.push(rel)
      }
    }
    return out
  })
