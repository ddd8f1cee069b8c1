/**
 * The root command's options, read by every subcommand: `--log-file`, `--verbose`, `--config`. The config
 * file and the logger are built from them once, as a layer around whichever subcommand runs.
 */
import { Command, Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Context, Effect, Layer, Option } from "effect"
import { type ConfigFile, configPathEnv, defaultConfigPath, loadConfigFile } from "../config/AppConfig.js"
import { LoggingLive } from "../config/Logging.js"
import { defaults, setting } from "../config/Settings.js"


export const globalOptions = {
  logFile: Options.file("log-file").pipe(
    Options.withAlias("log_file"),
    Options.withDescription(`Append logs to this file (default ${defaults.log_file}; config key log_file)`),
    Options.optional
  ),
  verbose: Options.boolean("verbose").pipe(Options.withDescription("Add debug lines to the log (config key verbose)")),
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


/** The config file and the logger for one run, from the global options. */
export const GlobalLive = (options: { readonly logFile: Option.Option<string>; readonly verbose: boolean; readonly config: Option.Option<string> }) =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const path = configPath(options.config)
      const file = yield* loadConfigFile(path)
      const logging = LoggingLive({
        logFile: setting(file, "log_file", options.logFile),
        verbose: options.verbose || setting(file, "verbose")
      })
      return Layer.merge(Layer.succeed(LoadedConfig, { path, file }), logging)
    })
  ) satisfies Layer.Layer<LoadedConfig, unknown, FileSystem.FileSystem>
