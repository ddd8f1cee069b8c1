/** `list`: the images the published catalog offers, or (`--refused`) the versions of the tree it leaves out and why. */
import { Command, Options } from "@effect/cli"
import { FileSystem, Path } from "@effect/platform"
import { Effect, Either, Option } from "effect"
import { userStateDir } from "../config/StateDir.js"
import { setting } from "../config/Settings.js"
import { catalogVersionDirs, checkVersion } from "../indexer/Catalog.js"
import { Indexer } from "../indexer/Indexer.js"
import { imageRows, type ListFormat, listFormats, formatRows, refusedRows, unexplainedPlans } from "../inspect/Listing.js"
import { VersionHasher } from "../indexer/VersionHasher.js"
import type { Compat } from "../simplestreams/Compat.js"
import { type Refusal, versionDir } from "../tree/Layout.js"
import { readSnapshot } from "../inspect/Verifier.js"
import { journalFileName, replay } from "../publish/Journal.js"
import { type FoundPlan, Scanner } from "../tree/Scanner.js"
import { LoadedConfig } from "./Global.js"
import { folderOptions, resolveFolders, stateDirOption } from "./Update.js"

export const inspectOptions = { ...folderOptions, stateDir: stateDirOption }

/** The folders, the compat mode and the state folder, as `watch` resolves them. */
export const resolveInspect = (flags: Command.Command.ParseConfig<typeof inspectOptions>) =>
  Effect.gen(function* () {
    const { file } = yield* LoadedConfig
    return { ...(yield* resolveFolders(flags)), stateDir: setting(file, "state_dir", flags.stateDir) }
  })

/**
 * The journal `watch` keeps, read without opening it for writing: the given state folder's, else the per-user
 * one `watch` falls back to when that one is not writable. Nothing remembered is no error.
 */
const readJournal = (stateDir: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    for (const dir of [stateDir, userStateDir(path)]) {
      const text = yield* fs.readFileString(path.join(dir, journalFileName)).pipe(Effect.option)
      if (Option.isSome(text)) return text.value
    }
    return ""
  })

/**
 * Reads and hashes versions as `update` does, without publishing anything: the refusal of each (its path made
 * relative to the images folder), or undefined for a version fit to publish.
 */
const readVersions = (plans: ReadonlyArray<FoundPlan>, options: { readonly compat: Compat; readonly imagesPath: string }) =>
  Effect.gen(function* () {
    const versions = yield* VersionHasher
    const how = yield* versions.hashPlanFor(plans, options.compat)
    const read = new Map<string, Refusal | undefined>()
    yield* Effect.forEach(
      plans,
      (plan) =>
        Effect.gen(function* () {
          const dir = versionDir(plan.ref)
          const hashed = yield* Effect.either(versions.hashVersion(plan, how))
          read.set(dir, Either.isLeft(hashed) ? hashed.left : checkVersion(hashed.right, options))
        }),
      { concurrency: versions.workers, discard: true }
    )
    return read
  })

const output = (text: string) => Effect.sync(() => void process.stdout.write(text))

export const list = Command.make(
  "list",
  {
    ...inspectOptions,
    format: Options.choice("format", listFormats).pipe(
      Options.withDescription("table (default), json, csv or yaml; json and yaml carry format_version 1"),
      Options.withDefault("table" as ListFormat)
    ),
    refused: Options.boolean("refused").pipe(Options.withDescription("List the versions of the images folder that are not published, and why"))
  },
  (flags) =>
    Effect.gen(function* () {
      const options = yield* resolveInspect(flags)
      const snapshot = yield* readSnapshot(options.streamsDir)
      if (!flags.refused) return yield* output(formatRows(flags.format, "images", imageRows(snapshot.images)))
      const imagesPath = yield* (yield* Indexer).imagesPathFor(options)
      const path = yield* Path.Path
      const scanned = yield* (yield* Scanner).scan(path.resolve(options.imagesDir))
      const known = {
        plans: scanned.plans,
        published: catalogVersionDirs(snapshot.images, imagesPath),
        memory: replay(yield* readJournal(options.stateDir), options.compat).state.memory
      }
      const read = yield* readVersions(unexplainedPlans(known), { compat: options.compat, imagesPath })
      const rows = refusedRows({ ...known, refusals: scanned.refusals, read })
      yield* output(formatRows(flags.format, "refused", rows))
    })
).pipe(Command.withDescription("List the published images (read from images.json, as clients see them), or with --refused the versions left out and why"))
