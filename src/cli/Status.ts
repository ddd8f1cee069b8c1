/**
 * `status [--json]`: where the service and its catalog stand, for people and monitors. Only reads (no writer
 * lock). Exit 0 when the service runs and the catalog is current; 1 when the service is not running; 3 when
 * the catalog is missing, stale or cannot be checked; 2 on bad input.
 */
import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { FileSystem, Path } from "@effect/platform"
import { Effect, Option } from "effect"
import { readableStateDir } from "../config/StateDir.js"
import { defaults, pruneSetting, serveDefaults, setting } from "../config/Settings.js"
import { probeStatus } from "../health/StatusProbe.js"
import { statusExitCode, statusReport, statusText } from "../health/StatusReport.js"
import { Indexer } from "../indexer/Indexer.js"
import { mirrorTargets } from "../mirror/MirrorConfig.js"
import { UsageError } from "./Failure.js"
import { LoadedConfig } from "./Global.js"
import { folderOptions, resolveFolders, stateDirOption } from "./Update.js"

/** `--stale-after`, shared by `status`, `serve` (`/readyz`) and `watch` (the metrics' `ready`): seconds above 0. */
export const staleAfterOption = Options.text("stale-after").pipe(
  Options.withDescription(
    `Seconds a settled upload may wait to be published before the catalog counts as stale (default ${defaults.stale_after}; config key stale_after)`
  ),
  // text, not float: a bad value gets a line that names the option
  Options.mapEffect((text): Effect.Effect<number, ValidationError.ValidationError> => {
    const seconds = Number(text)
    return text.trim() !== "" && Number.isFinite(seconds) && seconds > 0
      ? Effect.succeed(seconds)
      : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--stale-after: '${text}' is not a number of seconds above 0`)))
  }),
  Options.withPseudoName("seconds"),
  Options.optional
)

/** The threshold in milliseconds: the flag, else the config key, else the default. */
export const resolveStaleAfter = (flag: Option.Option<number>) =>
  Effect.map(LoadedConfig, ({ file }) => setting(file, "stale_after", flag) * 1000)

export const status = Command.make(
  "status",
  {
    ...folderOptions,
    stateDir: stateDirOption,
    staleAfter: staleAfterOption,
    pidfile: Options.file("pidfile").pipe(
      Options.withDescription(`The service's pidfile (default: watch's ${defaults.pidfile} and serve's ${serveDefaults.pidfile}; config key pidfile)`),
      Options.optional
    ),
    json: Options.boolean("json").pipe(Options.withDescription("Print the status as JSON (format_version 1, described in the README)"))
  },
  (flags) =>
    Effect.gen(function* () {
      const staleAfterMs = yield* resolveStaleAfter(flags.staleAfter)
      const { file } = yield* LoadedConfig
      const path = yield* Path.Path
      const folders = yield* resolveFolders(flags)
      // exit 1 says "not running": folders that cannot be right are bad input (2), not a report
      const imagesPath = yield* (yield* Indexer).imagesPathFor(folders).pipe(Effect.mapError((e) => new UsageError({ reason: e.reason })))
      if (Option.isSome(flags.imgDir) && !(yield* (yield* FileSystem.FileSystem).exists(flags.imgDir.value).pipe(Effect.orElseSucceed(() => false)))) {
        return yield* new UsageError({ reason: `--img-dir: images folder ${path.resolve(flags.imgDir.value)} does not exist` })
      }
      const stateDir = yield* readableStateDir(setting(file, "state_dir", flags.stateDir))
      // watch's and serve's own pidfiles, each also where the service writes it when it cannot (the state folder)
      const named = Option.isSome(flags.pidfile) ? [flags.pidfile.value] : [setting(file, "pidfile"), setting(file, "pidfile", Option.none(), serveDefaults.pidfile)]
      const pidfiles = [...new Set(named.flatMap((p) => [p, path.join(stateDir, path.basename(p))]))]
      const inputs = yield* probeStatus({
        imagesDir: folders.imagesDir,
        streamsDir: folders.streamsDir,
        imagesPath,
        stateDir,
        pidfiles,
        mirrors: mirrorTargets(file.mirrors, stateDir),
        staleAfterMs,
        settleMs: setting(file, "settle") * 1000,
        graceMs: (pruneSetting(file, "grace_hours") ?? 0) * 3_600_000
      })
      const report = statusReport(inputs)
      yield* Effect.sync(() => {
        process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : statusText(report, inputs.now))
        process.exitCode = statusExitCode(report)
      })
    })
).pipe(
  Command.withDescription(
    "Show the catalog's generation, age and size, uploads in progress, refusals, pending deletions and mirrors (exit 1: service not running; 3: catalog stale)"
  )
)
