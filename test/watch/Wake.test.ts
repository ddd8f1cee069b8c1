import { describe, expect, it } from "@effect/vitest"
import { waitBeforeNextLook } from "../../src/watch/Wake.js"

describe("waitBeforeNextLook", () => {
  it("waits for the earliest deadline, at most the poll interval, and briefly for one past", () => {
    expect(waitBeforeNextLook(1000, [], 1000)).toBe(1000)
    expect(waitBeforeNextLook(1000, [undefined, 5000, 1300, 1700], 1000)).toBe(300)
    expect(waitBeforeNextLook(1000, [900], 1000)).toBe(50)
    expect(waitBeforeNextLook(1000, [Infinity, 99_000], 1000)).toBe(1000)
  })
})
