/**
 * The hashes of versions already hashed, kept in the state folder (never in the web root) so that `watch`
 * re-hashes only what changed, also across restarts. An entry is used only while every file of the version
 * is the same file, unchanged: same device, inode, size and mtime.
 */
import { FileSystem, Path } from "@effect/platform"
import { Effect, Schema } from "effect"
import { compatModes } from "../simplestreams/Compat.js"
import type { FoundPlan } from "../tree/Scanner.js"
import { sameFile } from "../tree/Scanner.js"
import { removeStaleTemps, writeFileAtomic } from "./AtomicFile.js"
import type { HashedVersion } from "./Catalog.js"

const FileId = Schema.Struct({
  name: Schema.String,
  path: Schema.String,
  size: Schema.Number,
  dev: Schema.Number,
  ino: Schema.Number,
  mtimeMs: Schema.Number
})

const Entry = Schema.Struct({
  compat: Schema.Literal(...compatModes),
  files: Schema.Array(FileId),
  // the hashed version, as the Catalog takes it; checked by the catalog's Schema when written
  version: Schema.Unknown
})

const CacheFile = Schema.parseJson(
  Schema.Struct({ format: Schema.Literal(1), versions: Schema.Record({ key: Schema.String, value: Entry }) })
)

export type CacheEntry = typeof Entry.Type

const filesOf = (plan: FoundPlan) => [...plan.metadata, ...plan.rootfs]

/** The cached hashes of this version, if every one of its files is unchanged. */
export const lookup = (entries: ReadonlyMap<string, CacheEntry>, key: string, plan: FoundPlan, compat: string) => {
  const entry = entries.get(key)
  if (!entry || entry.compat !== compat) return undefined
  const files = filesOf(plan)
  return files.length === entry.files.length && files.every((f, i) => sameFile(f, entry.files[i]!))
    ? (entry.version as HashedVersion)
    : undefined
}

export const entryFor = (plan: FoundPlan, compat: CacheEntry["compat"], version: HashedVersion): CacheEntry => ({
  compat,
  files: filesOf(plan).map(({ name, path, size, dev, ino, mtimeMs }) => ({ name, path, size, dev, ino, mtimeMs })),
  version
})

export const cacheFileName = "hashes.json"

/** Reads the cache; a missing or unreadable one is an empty cache (everything is hashed again). */
export const loadCache = (stateDir: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const file = path.join(stateDir, cacheFileName)
    yield* removeStaleTemps(stateDir, [cacheFileName])
    const text = yield* fs.readFileString(file).pipe(Effect.option)
    if (text._tag === "None") return new Map<string, CacheEntry>()
    const decoded = yield* Schema.decode(CacheFile)(text._tag === "Some" ? text.value : "").pipe(Effect.option)
    if (decoded._tag === "None") {
      yield* Effect.logWarning(`ignored the hash cache ${file}: not readable as one; every version is hashed again`)
      return new Map<string, CacheEntry>()
    }
    return new Map(Object.entries(decoded.value.versions))
  })

/** Writes the cache atomically (temp file, fsync, rename). */
export const saveCache = (stateDir: string, entries: ReadonlyMap<string, CacheEntry>) =>
  Effect.gen(function* () {
    const path = yield* Path.Path
    const text = yield* Schema.encode(CacheFile)({ format: 1, versions: Object.fromEntries(entries) })
    yield* writeFileAtomic(path.join(stateDir, cacheFileName), text)
  })
