/** The retention rules with plain values and the TestClock: which versions a policy withdraws, which deletions are due. */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, TestClock } from "effect"
import { dueDeletions, isDangling, nextDeletion, type PublishedVersion, toWithdraw, versionTime } from "../../src/retention/Retention.js"
import { replayWithdrawals } from "../../src/retention/WithdrawalLog.js"

const v = (product: string, version: string): PublishedVersion => ({ product, version, key: `${product.split(":").join("/")}/${version}` })
const deb = ["20240101_10:00", "20240102_10:00", "20240103_10:00", "20240104_10:00"].map((n) => v("debian:bookworm:amd64:default", n))
const alpine = [v("alpine:3.20:arm64:default", "20240101_10:00")]
const keys = (ws: ReadonlyArray<{ key: string }>) => ws.map((w) => w.key)
const day = 86_400_000

describe("versionTime", () => {
  it("reads the date (and time) a version folder's name starts with, in UTC", () => {
    expect(versionTime("20240102_10:30")).toBe(Date.UTC(2024, 0, 2, 10, 30))
    expect(versionTime("20240102_1030")).toBe(Date.UTC(2024, 0, 2, 10, 30))
    expect(versionTime("20240102")).toBe(Date.UTC(2024, 0, 2))
    expect(versionTime("20241350_10:00")).toBeUndefined()
    expect(versionTime("latest")).toBeUndefined()
  })
})

describe("toWithdraw", () => {
  it("keeps the newest N versions of every product, by version name", () => {
    const out = toWithdraw([...deb, ...alpine], { keep: 2 }, Date.UTC(2024, 0, 5))
    expect(keys(out)).toEqual(keys(deb.slice(0, 2)))
    expect(out[0]?.reason).toBe("retention: keep the newest 2 versions")
    expect(toWithdraw(deb, { keep: 1 }, 0).length).toBe(3)
    expect(toWithdraw(deb, { keep: 4 }, 0)).toEqual([])
  })

  it.effect("withdraws versions older than the age limit, never the newest of a product", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.UTC(2024, 0, 4, 10, 0))
      const now = yield* Clock.currentTimeMillis
      expect(keys(toWithdraw([...deb, ...alpine], { maxAgeDays: 1.5 }, now))).toEqual(keys(deb.slice(0, 2)))
      yield* TestClock.adjust(`${365} days`)
      // everything is old now: each product keeps its newest
      expect(keys(toWithdraw([...deb, ...alpine], { maxAgeDays: 1 }, yield* Clock.currentTimeMillis))).toEqual(keys(deb.slice(0, 3)))
    })
  )

  it("combines both limits; no limit withdraws nothing", () => {
    const odd = [v("x:1:amd64:default", "20240101_10:00"), v("x:1:amd64:default", "20240101_10:00-rc"), v("x:1:amd64:default", "20240201_10:00")]
    expect(keys(toWithdraw(odd, { keep: 5, maxAgeDays: 10 }, Date.UTC(2024, 1, 2)))).toEqual(keys(odd.slice(0, 2)))
    expect(toWithdraw(deb, {}, Date.now())).toEqual([])
  })
})

describe("dueDeletions", () => {
  it.effect("a withdrawal's files are due once the grace period has passed since it left the catalog", () =>
    Effect.gen(function* () {
      const grace = 6 * 3_600_000
      const start = yield* Clock.currentTimeMillis
      const pending = [{ key: "a", at: start }, { key: "b", at: start + 3_600_000 }]
      expect(dueDeletions(pending, grace, yield* Clock.currentTimeMillis)).toEqual([])
      expect(nextDeletion(pending, grace)).toBe(start + grace)
      yield* TestClock.adjust("6 hours")
      expect(keys(dueDeletions(pending, grace, yield* Clock.currentTimeMillis))).toEqual(["a"])
      yield* TestClock.adjust("1 hour")
      expect(keys(dueDeletions(pending, grace, yield* Clock.currentTimeMillis))).toEqual(["a", "b"])
      expect(nextDeletion([], grace)).toBeUndefined()
    })
  )

  it("a withdrawal keeps the grace period it was made with; one recorded without keeps the reader's", () => {
    const pending = [{ key: "short", at: 0, graceMs: 1000 }, { key: "old", at: 0 }]
    expect(nextDeletion(pending, 6 * 3_600_000)).toBe(1000)
    expect(keys(dueDeletions(pending, 6 * 3_600_000, 1000))).toEqual(["short"])
    expect(keys(dueDeletions(pending, 6 * 3_600_000, 6 * 3_600_000))).toEqual(["old", "short"])
  })

  it("a folder dangles once nothing in it changed for the limit", () => {
    expect(isDangling(0, day, day - 1)).toBe(false)
    expect(isDangling(0, day, day)).toBe(true)
  })
})

describe("replayWithdrawals", () => {
  it("a withdrawal waits until its deletion or its end, and a torn line is skipped", () => {
    const lines = [
      { withdraw: "a", files: [], at: 1, reason: "r" },
      { withdraw: "b", files: [], at: 2, reason: "r" },
      { withdraw: "c", files: [], at: 3, reason: "r" },
      { deleted: "a", at: 4 },
      { ended: "b", at: 5, reason: "new files" }
    ].map((l) => JSON.stringify(l))
    const pending = replayWithdrawals(`${lines.join("\n")}\n{"withdraw":"d","fi`)
    expect([...pending.keys()]).toEqual(["c"])
    expect(pending.get("c")?.at).toBe(3)
  })
})
