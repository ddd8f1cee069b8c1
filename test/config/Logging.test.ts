/** The log line formats, with plain values: JSON that parses, the journal's priority prefixes, one line per event. */
import { describe, expect, it } from "@effect/vitest"
import { LogLevel } from "effect"
import { fstatSync } from "node:fs"
import { formatLogLine, type LogEvent, stderrIsJournal } from "../../src/config/Logging.js"

const date = new Date("2026-11-26T15:48:42.123Z")
const event = (level: LogLevel.LogLevel, words: string): LogEvent => ({ date, level, words })
const levels = [
  [LogLevel.Fatal, "<2>", "fatal"],
  [LogLevel.Error, "<3>", "error"],
  [LogLevel.Warning, "<4>", "warning"],
  [LogLevel.Info, "<6>", "info"],
  [LogLevel.Debug, "<7>", "debug"]
] as const

describe("formatLogLine", () => {
  it("text: timestamp, level, the words", () => {
    expect(formatLogLine(event(LogLevel.Warning, "refused /i/x: bad"), { format: "text", journal: false })).toBe(
      "2026-11-26T15:48:42.123Z WARN  refused /i/x: bad"
    )
  })

  it("json: one object with time, level and message, the same words", () => {
    for (const [level, , name] of levels) {
      const line = formatLogLine(event(level, "refused /i/x: bad"), { format: "json", journal: false })
      expect(JSON.parse(line)).toEqual({ time: "2026-11-26T15:48:42.123Z", level: name, message: "refused /i/x: bad" })
    }
  })

  it("under the journal: the syslog priority first and no timestamp in text; json keeps its time field", () => {
    for (const [level, prefix] of levels) {
      const text = formatLogLine(event(level, "words"), { format: "text", journal: true })
      expect(text.startsWith(prefix)).toBe(true)
      expect(text).not.toContain("2026")
      expect(text).toMatch(/ words$/)
      const json = formatLogLine(event(level, "words"), { format: "json", journal: true })
      expect(json.startsWith(prefix)).toBe(true)
      expect(JSON.parse(json.slice(prefix.length)).message).toBe("words")
    }
  })

  it("a newline in a message (an uploaded file's name) cannot split the event or forge a priority", () => {
    const words = "refused /i/evil\n<3>forged: bad"
    for (const format of ["text", "json"] as const) {
      for (const journal of [false, true]) {
        const line = formatLogLine(event(LogLevel.Warning, words), { format, journal })
        expect(line).not.toContain("\n")
        if (format === "json") expect(JSON.parse(line.replace(/^<\d>/, "")).message).toBe(words)
        else expect(line).toContain("evil\\n<3>forged")
      }
    }
  })
})

describe("stderrIsJournal", () => {
  it("is true only when JOURNAL_STREAM names stderr itself", () => {
    const st = fstatSync(2, { bigint: true })
    expect(stderrIsJournal({ JOURNAL_STREAM: `${st.dev}:${st.ino}` })).toBe(true)
    expect(stderrIsJournal({ JOURNAL_STREAM: `${st.dev}:${st.ino + 1n}` })).toBe(false)
    expect(stderrIsJournal({ JOURNAL_STREAM: "" })).toBe(false)
    expect(stderrIsJournal({})).toBe(false)
  })
})
