/**
 * Log lines go to stderr (the journal, under systemd) and are appended to the log file; `--verbose` adds
 * debug lines. One line per event, with the same words in every format:
 *   text      `2026-11-26T15:48:42.123Z WARN  refused …: reason`
 *   json      `{"time":"2026-11-26T15:48:42.123Z","level":"warning","message":"refused …: reason"}`
 * Under systemd (stderr is the stream JOURNAL_STREAM names) each stderr line starts with its syslog priority,
 * `<4>`, which journald turns into the entry's priority (`journalctl -p warning`), and the text format drops
 * its timestamp, which the journal keeps already. The log file is always text with timestamps: it is read by
 * people and logrotate, not by journald.
 */
import { FileSystem, PlatformLogger } from "@effect/platform"
import { Cause, Effect, Layer, Logger, LogLevel } from "effect"
import { fstatSync } from "node:fs"
import { writeLine } from "../progress/StatusLine.js"

export const logFormats = ["text", "json"] as const
export type LogFormat = (typeof logFormats)[number]

export interface LogEvent {
  readonly date: Date
  readonly level: LogLevel.LogLevel
  /** The message and the first line of its failure, if any: the words every format carries. */
  readonly words: string
}

/** Where a line goes: the journal takes a priority prefix instead of a timestamp. */
export interface LineStyle {
  readonly format: LogFormat
  readonly journal: boolean
}

/** syslog(3) priorities: what journald reads from a `<N>` prefix. */
const priority = (level: LogLevel.LogLevel): number =>
  level._tag === "Fatal" ? 2 : level._tag === "Error" ? 3 : level._tag === "Warning" ? 4 : level._tag === "Info" ? 6 : 7

const jsonLevel = (level: LogLevel.LogLevel): string =>
  level._tag === "Warning" ? "warning" : level._tag === "None" || level._tag === "All" ? "info" : level._tag.toLowerCase()

/**
 * Control characters in a message (a file name may hold a newline) would split one event into two lines, or
 * forge a line with a priority prefix of its own: they are written as escapes. `status` writes its lines so too.
 */
export const oneLine = (text: string): string =>
  text.replace(/[\u0000-\u001f\u007f]/g, (c) => (c === "\n" ? "\\n" : c === "\t" ? "\\t" : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`))

/** One log line, without its newline. Pure. */
export const formatLogLine = (event: LogEvent, style: LineStyle): string => {
  const prefix = style.journal ? `<${priority(event.level)}>` : ""
  if (style.format === "json") {
    return `${prefix}${JSON.stringify({ time: event.date.toISOString(), level: jsonLevel(event.level), message: event.words })}`
  }
  const text = `${event.level.label.padEnd(5)} ${oneLine(event.words)}`
  return style.journal ? `${prefix}${text}` : `${event.date.toISOString()} ${text}`
}

const eventOf = ({ cause, date, logLevel, message }: Logger.Logger.Options<unknown>): LogEvent => {
  const text = (Array.isArray(message) ? message : [message]).map((m) => (typeof m === "string" ? m : JSON.stringify(m))).join(" ")
  const failure = Cause.isEmpty(cause) ? "" : ` ${Cause.pretty(cause).split("\n")[0]}`
  return { date, level: logLevel, words: `${text}${failure}` }
}

const lineLogger = (style: LineStyle) => Logger.make<unknown, string>((options) => formatLogLine(eventOf(options), style))

/**
 * Stderr is the journal's stream: JOURNAL_STREAM is `device:inode` of the socket systemd gave as stdout/stderr,
 * and it is compared with stderr itself, because the variable is inherited by whatever a service starts (a shell
 * whose stderr is a terminal, say), where the prefixes would be noise.
 */
export const stderrIsJournal = (env: NodeJS.ProcessEnv = process.env): boolean => {
  const stream = env["JOURNAL_STREAM"]
  if (!stream) return false
  try {
    const st = fstatSync(2, { bigint: true })
    return stream === `${st.dev}:${st.ino}`
  } catch {
    return false
  }
}

/** The style stderr's log lines got, for the last line of a run that fails: set once the logger is built. */
let stderrStyle: LineStyle | undefined

/**
 * The line that says why the program stops, in the style of the log lines before it: JSON in the json format,
 * with the priority of an error under the journal, else `lxd-image-server: reason` (as before a logger exists,
 * for a config file that cannot be read).
 */
export const failureLine = (reason: string, journal: boolean = stderrIsJournal()): string => {
  const words = `lxd-image-server: ${reason}`
  const style = stderrStyle ?? { format: "text", journal }
  return style.format === "json" ? formatLogLine({ date: new Date(), level: LogLevel.Error, words }, style) : `${style.journal ? "<3>" : ""}${words}`
}

export interface LoggingOptions {
  readonly logFile: string | undefined
  readonly verbose: boolean
  readonly format: LogFormat
  /** Stderr goes to the journal: see `stderrIsJournal`. */
  readonly journal: boolean
}

/** Replaces the default logger; a log file that cannot be opened is reported on stderr, not fatal. */
export const LoggingLive = (options: LoggingOptions): Layer.Layer<never, never, FileSystem.FileSystem> =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const level = Logger.minimumLogLevel(options.verbose ? LogLevel.Debug : LogLevel.Info)
      const style: LineStyle = { format: options.format, journal: options.journal }
      stderrStyle = style
      const stderrLogger = Logger.map(lineLogger(style), writeLine)
      const toStderr = Logger.replace(Logger.defaultLogger, stderrLogger)
      if (!options.logFile) return Layer.mergeAll(toStderr, level)
      const fileLines = lineLogger({ format: "text", journal: false })
      const fileLogger = yield* fileLines.pipe(PlatformLogger.toFile(options.logFile, { batchWindow: "100 millis" }), Effect.either)
      if (fileLogger._tag === "Left") {
        const words = `cannot open log file ${options.logFile}: ${fileLogger.left.message}`
        writeLine(formatLogLine({ date: new Date(), level: LogLevel.Warning, words }, style))
        return Layer.mergeAll(toStderr, level)
      }
      return Layer.mergeAll(Logger.replace(Logger.defaultLogger, Logger.zip(stderrLogger, fileLogger.right)), level)
    })
  )
