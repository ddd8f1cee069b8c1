/** `mirror status [--json]` and `mirror push [NAME…]`: the push mirrors of `[mirrors.NAME]`, seen and pushed by hand. */
import { Args, Command, Options } from "@effect/cli"
import { FileSystem, Path } from "@effect/platform"
import { Clock, Effect, Option } from "effect"
import { userStateDir, writableStateDir } from "../config/StateDir.js"
import { setting } from "../config/Settings.js"
import { Indexer } from "../indexer/Indexer.js"
import { mirrorTargets } from "../mirror/MirrorConfig.js"
import { MirrorPush } from "../mirror/MirrorPush.js"
import { pushOnce } from "../mirror/MirrorQueue.js"
import { readMirrorStatuses } from "../mirror/MirrorReport.js"
import { statusTable } from "../mirror/MirrorState.js"
import { primaryOf, readStatusFile } from "../health/StatusFile.js"
import { LoadedConfig } from "./Global.js"
import { folderOptions, resolveFolders, stateDirOption } from "./Update.js"
import { UsageError } from "./Failure.js"

const mirrorOptions = { ...folderOptions, stateDir: stateDirOption }

/** The primary's generation as the service last wrote it in status.json, if it did. */
const primaryGeneration = (stateDir: string) => Effect.map(readStatusFile(stateDir), (s) => Option.getOrUndefined(Option.map(s, primaryOf)))

/** The configured state folder, or the per-user one `watch` falls back to when that one is not there. */
const readableStateDir = (wanted: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const fallback = userStateDir(path)
    if (yield* fs.exists(path.join(wanted, "mirrors")).pipe(Effect.orElseSucceed(() => false))) return wanted
    return (yield* fs.exists(path.join(fallback, "mirrors")).pipe(Effect.orElseSucceed(() => false))) ? fallback : wanted
  })

export const mirrorStatus = Command.make(
  "status",
  { ...mirrorOptions, json: Options.boolean("json").pipe(Options.withDescription("Print {\"mirrors\": [...]} for tools")) },
  (flags) =>
    Effect.gen(function* () {
      const { file } = yield* LoadedConfig
      const stateDir = yield* readableStateDir(setting(file, "state_dir", flags.stateDir))
      const primary = yield* primaryGeneration(stateDir)
      const now = yield* Clock.currentTimeMillis
      const rows = yield* readMirrorStatuses(mirrorTargets(file.mirrors, stateDir), stateDir, primary, now)
      yield* Effect.sync(() => process.stdout.write(flags.json ? `${JSON.stringify({ mirrors: rows }, null, 2)}\n` : statusTable(rows)))
    })
).pipe(Command.withDescription("Show each mirror's generation, lag, state (in-sync, pushing, failing) and last error"))

const push = Command.make(
  "push",
  { ...mirrorOptions, names: Args.text({ name: "NAME" }).pipe(Args.repeated) },
  (flags) =>
    Effect.gen(function* () {
      const { file } = yield* LoadedConfig
      const pusher = yield* MirrorPush
      const indexer = yield* Indexer
      const folders = yield* resolveFolders(flags)
      const stateDir = yield* writableStateDir(setting(file, "state_dir", flags.stateDir))
      const all = mirrorTargets(file.mirrors, stateDir)
      const unknown = flags.names.filter((n) => !all.some((m) => m.name === n))
      if (all.length === 0 || unknown.length > 0) {
        const known = all.length === 0 ? "the config file has no [mirrors.NAME] table" : `configured: ${all.map((m) => m.name).join(", ")}`
        return yield* new UsageError({ reason: `mirror push: ${unknown.length > 0 ? `no mirror named ${unknown.join(", ")}` : "nothing to push to"} (${known})` })
      }
      const chosen = flags.names.length === 0 ? all : all.filter((m) => flags.names.includes(m.name))
      const ctx = { streamsDir: folders.streamsDir, imagesPath: yield* indexer.imagesPathFor(folders), stateDir }
      const primary = yield* primaryGeneration(stateDir)
      const results = yield* Effect.forEach(
        chosen,
        (m) =>
          Effect.gen(function* () {
            // recorded as the primary's generation at least: the push sends the catalog as it is when it begins
            const outcome = yield* pushOnce(pusher.driver(m, ctx), { floor: primary?.generation ?? 0 })
            if (outcome.error !== undefined) yield* Effect.logError(outcome.error.message)
            else yield* Effect.logInfo(`mirror ${m.name}: generation ${outcome.state.generation} pushed`)
            return outcome.error === undefined
          }),
        { concurrency: "unbounded" }
      )
      const failures = results.filter((ok) => !ok).length
      if (failures > 0) return yield* Effect.fail(new Error(`${failures} of ${chosen.length} mirror pushes failed (see the log)`))
    })
).pipe(Command.withDescription("Push the catalog to the mirrors named (default: all) now, and exit with the result"))

export const mirror = Command.make("mirror").pipe(
  Command.withDescription("Push mirrors: see their state, or push to them now"),
  Command.withSubcommands([mirrorStatus, push])
)
