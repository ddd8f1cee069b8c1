/**
 * The root command's options, read by every subcommand: `--log-file`, `--log-format`, `--verbose`, `--quiet`,
 * `--config`. The config file, the logger and the progress line are built from them once, as a layer around
 * whichever subcommand runs.
 */
import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Context, Effect, Layer, Option } from "effect"
import { type ConfigFile, configPathEnv, defaultConfigPath, loadConfigFile } from "../config/AppConfig.js"
import { LoggingLive, type LogFormat, logFormats, stderrIsJournal } from "../config/Logging.js"
import { ProgressLive } from "../progress/Progress.js"
import { defaults, setting } from "../config/Settings.js"


export const globalOptions = {
  logFile: Options.file("log-file").pipe(
    Options.withAlias("log_file"),
    Options.withDescription(`Append logs to this file (default ${defaults.log_file}; config key log_file)`),
    Options.optional
  ),
  // text, not choice: an unknown format gets a line that names the option, not only the cases
  logFormat: Options.text("log-format").pipe(
    Options.withAlias("log_format"),
    Options.withDescription(`How log lines are written on stderr: ${logFormats.join(" or ")} (default ${defaults.log_format}; config key log_format)`),
    Options.mapEffect((format): Effect.Effect<LogFormat, ValidationError.ValidationError> =>
      (logFormats as ReadonlyArray<string>).includes(format)
        ? Effect.succeed(format as LogFormat)
        : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--log-format: unknown format '${format}', expected ${logFormats.join(" or ")}`)))
    ),
    Options.optional
  ),
  verbose: Options.boolean("verbose").pipe(Options.withDescription("Add debug lines to the log (config key verbose)")),
  quiet: Options.boolean("quiet").pipe(
    Options.withAlias("q"),
    Options.withDescription("No progress bar on the terminal (config key quiet); log lines are kept")
  ),
  config: Options.file("config").pipe(
    Options.withDescription(
      `The TOML config file (default: $${configPathEnv}, else ${defaultConfigPath}; a missing file is no error)`
    ),
    Options.optional
  )
}

export const root = Command.make("lxd-image-server", globalOptions)

/** The config file's values, for subcommands to merge under their flags. */
export class LoadedConfig extends Context.Tag("lxd-image-server/LoadedConfig")<
  LoadedConfig,
  { readonly path: string; readonly file: ConfigFile }
>() {}

export const configPath = (flag: Option.Option<string>): string =>
  Option.getOrElse(flag, () => process.env[configPathEnv] || defaultConfigPath)


/**
 * The config file, the logger and the progress line for one run, from the global options. A command that
 * only reads (`readOnly`) writes to a log file only when one is named, never to the default in the current folder.
 */
export const GlobalLive = (options: {
  readonly logFile: Option.Option<string>
  readonly logFormat: Option.Option<LogFormat>
  readonly verbose: boolean
  readonly quiet: boolean
  readonly config: Option.Option<string>
}, readOnly = false) =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const path = configPath(options.config)
      const file = yield* loadConfigFile(path)
      const logging = LoggingLive({
        logFile: setting(file, "log_file", options.logFile, readOnly ? "" : undefined) || undefined,
        verbose: options.verbose || setting(file, "verbose"),
        format: setting(file, "log_format", options.logFormat),
        journal: stderrIsJournal()
      })
      const progress = ProgressLive({ quiet: options.quiet || setting(file, "quiet") })
      return Layer.mergeAll(Layer.succeed(LoadedConfig, { path, file }), logging, progress)
    })
  ) satisfies Layer.Layer<LoadedConfig, unknown, FileSystem.FileSystem>
