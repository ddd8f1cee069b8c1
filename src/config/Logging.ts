/**
 * Log lines go to stderr (the journal, under systemd) and are appended to the log file; `--verbose` adds
 * debug lines. One line per event: `2026-11-26T15:48:42.123Z WARN refused …: reason`.
 */
import { FileSystem, PlatformLogger } from "@effect/platform"
import { Cause, Effect, Layer, Logger, LogLevel } from "effect"

const formatLine = Logger.make<unknown, string>(({ cause, date, logLevel, message }) => {
  const text = (Array.isArray(message) ? message : [message]).map((m) => (typeof m === "string" ? m : JSON.stringify(m))).join(" ")
  const failure = Cause.isEmpty(cause) ? "" : ` ${Cause.pretty(cause).split("\n")[0]}`
  return `${date.toISOString()} ${logLevel.label.padEnd(5)} ${text}${failure}`
})

const stderrLogger = Logger.map(formatLine, (line) => {
  process.stderr.write(`${line}\n`)
})

export interface LoggingOptions {
  readonly logFile: string | undefined
  readonly verbose: boolean
}

/** Replaces the default logger; a log file that cannot be opened is reported on stderr, not fatal. */
export const LoggingLive = (options: LoggingOptions): Layer.Layer<never, never, FileSystem.FileSystem> =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const level = Logger.minimumLogLevel(options.verbose ? LogLevel.Debug : LogLevel.Info)
      const toStderr = Logger.replace(Logger.defaultLogger, stderrLogger)
      if (!options.logFile) return Layer.mergeAll(toStderr, level)
      const fileLogger = yield* formatLine.pipe(PlatformLogger.toFile(options.logFile, { batchWindow: "100 millis" }), Effect.either)
      if (fileLogger._tag === "Left") {
        process.stderr.write(`${new Date().toISOString()} WARN  cannot open log file ${options.logFile}: ${fileLogger.left.message}\n`)
        return Layer.mergeAll(toStderr, level)
      }
      return Layer.mergeAll(Logger.replace(Logger.defaultLogger, Logger.zip(stderrLogger, fileLogger.right)), level)
    })
  )
