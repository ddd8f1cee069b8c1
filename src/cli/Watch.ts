/** `watch`: the service. Follows the images folder and keeps the catalog true; SIGHUP reloads the config file. */
import { Command, Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Duration, Effect, Queue } from "effect"
import { type ConfigFile, loadConfigFile } from "../config/AppConfig.js"
import { writableStateDir } from "../config/StateDir.js"
import { mirrorTargets } from "../mirror/MirrorConfig.js"
import { syncTargets } from "../sync/SyncConfig.js"
import { hangups, holdPidfile, runsThisProgram } from "../watch/Pidfile.js"
import { type WatchRetention, WatchService } from "../watch/WatchService.js"
import { defaults, pruneSetting, setting } from "../config/Settings.js"
import { LoadedConfig } from "./Global.js"
import { folderOptions, resolveFolders, stateDirOption } from "./Update.js"
import { resolveStaleAfter, staleAfterOption } from "./Status.js"
import { UsageError } from "./Failure.js"
import { HealthLive } from "../Layers.js"
import { feedMetrics } from "../health/MetricsFeed.js"
import { metricsFileProblem, writeMetricsFile } from "../health/MetricsFile.js"
import { ServiceBoard } from "../health/ServiceBoard.js"
import { heldToKey } from "./HeldToKey.js"

const watchOptions = {
  ...folderOptions,
  stateDir: stateDirOption,
  pidfile: Options.file("pidfile").pipe(
    Options.withDescription(`The pidfile \`reload\` reads (default ${defaults.pidfile}; config key pidfile)`),
    Options.optional
  ),
  settle: Options.float("settle").pipe(
    heldToKey("settle", "settle"),
    Options.withDescription("Seconds a version must stay unchanged before it is published (default 2; config key settle)"),
    Options.optional
  ),
  reconcileInterval: Options.float("reconcile-interval").pipe(
    heldToKey("reconcile-interval", "reconcile_interval"),
    Options.withDescription("Seconds between full reconciles of the tree (default 600; config key reconcile_interval)"),
    Options.optional
  ),
  metricsFile: Options.text("metrics-file").pipe(
    Options.withDescription("Write the metrics there, for node-exporter's textfile collector (a *.prom file; default none; config key metrics_file)"),
    Options.optional
  ),
  staleAfter: staleAfterOption
}

/** `[prune]` of the config file, as the service applies it: its policy is off unless the file sets one. */
export const watchRetention = (file: ConfigFile): WatchRetention => {
  const dangling = file.prune?.dangling_hours
  return {
    policy: { keep: file.prune?.keep, maxAgeDays: file.prune?.max_age_days },
    graceMs: (pruneSetting(file, "grace_hours") ?? 0) * 3_600_000,
    danglingMs: dangling === undefined ? undefined : dangling * 3_600_000
  }
}

type WatchFlags = Command.Command.ParseConfig<typeof watchOptions>

export const resolveWatch = (flags: WatchFlags) =>
  Effect.gen(function* () {
    const { file } = yield* LoadedConfig
    return {
      ...(yield* resolveFolders(flags)),
      stateDir: setting(file, "state_dir", flags.stateDir),
      pidfile: setting(file, "pidfile", flags.pidfile),
      settle: Duration.seconds(setting(file, "settle", flags.settle)),
      reconcileEvery: Duration.seconds(setting(file, "reconcile_interval", flags.reconcileInterval)),
      mirrorTables: file.mirrors,
      syncTables: file.sync,
      retention: watchRetention(file),
      metricsFile: setting(file, "metrics_file", flags.metricsFile),
      staleAfterMs: yield* resolveStaleAfter(flags.staleAfter)
    }
  })

export const watch = Command.make("watch", watchOptions, (flags) =>
  Effect.scoped(
    Effect.gen(function* () {
      const service = yield* WatchService
      const loaded = yield* LoadedConfig
      let options = yield* resolveWatch(flags)
      // the metrics file is read at start only, and a folder that is not there is bad input
      const metricsFile = options.metricsFile
      const problem = metricsFile === "" ? undefined : yield* metricsFileProblem(metricsFile)
      if (problem !== undefined) return yield* new UsageError({ reason: problem })
      const stateDir = yield* writableStateDir(options.stateDir)
      yield* holdPidfile(options.pidfile, stateDir)
      const board = yield* ServiceBoard
      if (metricsFile !== "") {
        const feed = yield* feedMetrics(() => ({ ...options, stateDir, mirrors: mirrorTargets(options.mirrorTables, stateDir) }))
        yield* writeMetricsFile(metricsFile, feed)
      }
      const hups = yield* hangups
      for (;;) {
        const why = yield* Effect.raceFirst(
          service.run({ ...options, stateDir, mirrors: mirrorTargets(options.mirrorTables, stateDir), syncs: syncTargets(options.syncTables), report: board.report }).pipe(Effect.as("stopped" as const)),
          Queue.take(hups).pipe(Effect.as("reload" as const))
        )
        if (why === "stopped") return
        // a bad file keeps the running config: the service never stops for a reload
        const file = yield* Effect.either(loadConfigFile(loaded.path))
        if (file._tag === "Left") {
          yield* Effect.logError(`SIGHUP: kept the running config: ${file.left.message}`)
          continue
        }
        options = yield* resolveWatch(flags).pipe(Effect.provideService(LoadedConfig, { path: loaded.path, file: file.right }))
        yield* Effect.logInfo(`SIGHUP: reloaded ${loaded.path}`)
      }
    }).pipe(Effect.onInterrupt(() => Effect.logInfo("stopped; the catalog on disk is whole")))
  ).pipe(Effect.provide(HealthLive))
).pipe(Command.withDescription("Run the service: keep index.json and images.json true while images arrive and leave"))

export const reload = Command.make(
  "reload",
  {
    pidfile: Options.file("pidfile").pipe(
      Options.withDescription(`The service's pidfile (default ${defaults.pidfile}; config key pidfile)`),
      Options.optional
    )
  },
  (flags) =>
    Effect.gen(function* () {
      const { file } = yield* LoadedConfig
      const pidfile = setting(file, "pidfile", flags.pidfile)
      const fs = yield* FileSystem.FileSystem
      const text = yield* fs.readFileString(pidfile).pipe(
        Effect.mapError(
          (e) => new Error(`cannot read the pidfile ${pidfile}: ${e._tag === "SystemError" && e.reason === "NotFound" ? "it does not exist (is the service running?)" : e.message}`)
        )
      )
      const pid = Number(text.trim())
      if (!Number.isInteger(pid) || pid <= 0) return yield* Effect.fail(new Error(`the pidfile ${pidfile} holds no pid`))
      if (!runsThisProgram(pid)) return yield* Effect.fail(new Error(`the pidfile ${pidfile} names process ${pid}, which is not lxd-image-server (is the service running?)`))
      yield* Effect.try({ try: () => process.kill(pid, "SIGHUP"), catch: (e) => new Error(`cannot signal process ${pid}: ${(e as Error).message}`) })
      yield* Effect.logInfo(`sent SIGHUP to lxd-image-server (pid ${pid}): it reloads ${(yield* LoadedConfig).path}`)
    })
).pipe(Command.withDescription("Make the running service reload its config file (sends it SIGHUP)"))
