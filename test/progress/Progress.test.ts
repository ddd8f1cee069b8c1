/** The terminal progress reporter on a fake line and the TestClock: how often it draws, and that it leaves. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { makeTerminalProgress, Progress, type StatusSink } from "../../src/progress/Progress.js"

const fakeSink = () => {
  const shown: Array<string> = []
  let cleared = 0
  const sink: StatusSink = { show: (t) => void shown.push(t), clear: () => void cleared++, columns: () => 120 }
  return { sink, shown, cleared: () => cleared }
}

describe("terminal progress", () => {
  it.scoped("draws at start, at most ten times a second while advancing, each second when idle, and wipes itself when done", () =>
    Effect.gen(function* () {
      const { sink, shown, cleared } = fakeSink()
      const progress = yield* makeTerminalProgress(sink)
      yield* progress.start(100, 100 * 1024)
      expect(shown).toHaveLength(1)
      for (let i = 0; i < 100; i++) {
        yield* progress.advance(1, 1024)
        yield* TestClock.adjust("10 millis")
      }
      // 100 advances over one second: about ten draws, not a hundred (the idle ticker adds at most one)
      expect(shown.length).toBeLessThanOrEqual(13)
      expect(shown.length).toBeGreaterThanOrEqual(9)
      expect(shown.at(-1)).toContain("files")
      const before = shown.length
      yield* TestClock.adjust("3 seconds")
      expect(shown.length - before).toBeGreaterThanOrEqual(2)
      yield* progress.done()
      expect(cleared()).toBe(1)
      const after = shown.length
      yield* progress.advance(1, 1)
      yield* TestClock.adjust("3 seconds")
      expect(shown.length).toBe(after)
    })
  )

  it.effect("the tag's default is silent: code may report progress with no layer provided", () =>
    Effect.gen(function* () {
      const progress = yield* Progress
      yield* progress.start(1, 1)
      yield* progress.advance(1, 1)
      yield* progress.done()
    })
  )
})
