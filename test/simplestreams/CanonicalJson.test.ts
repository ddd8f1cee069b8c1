/** canonicalJson: the same bytes for the same catalog, whatever order its objects' keys were made in. */
import { describe, expect, it } from "@effect/vitest"
import { canonicalJson } from "../../src/simplestreams/Streams.js"

/** The rule as first written: every object copied with its keys sorted. */
const reference = (value: unknown): string => {
  const sortKeys = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sortKeys)
      : v !== null && typeof v === "object"
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]))
        : v
  return `${JSON.stringify(sortKeys(value), null, 2)}\n`
}

/** A small seeded generator, so that a failure is the same on every run. */
const random = (seed: number) => () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)

const keyPool = ["a", "b", "B", "10", "9", "0", "ftype", "items", "sha256", "lxd.tar.xz", "é", "_", "aa", "20240101_10:00"]

const randomValue = (next: () => number, depth: number): unknown => {
  const r = next()
  if (depth > 3 || r < 0.3) return [null, true, 1.5, 42, "text", ""][Math.floor(next() * 6)]
  if (r < 0.5) return Array.from({ length: Math.floor(next() * 4) }, () => randomValue(next, depth + 1))
  const object: Record<string, unknown> = next() < 0.1 ? Object.create(null) : {}
  const keys = [...keyPool].sort(() => next() - 0.5).slice(0, Math.floor(next() * 6))
  // half of the objects are made in sorted order, as the catalog's mostly are
  if (next() < 0.5) keys.sort()
  for (const k of keys) object[k] = randomValue(next, depth + 1)
  return object
}

describe("canonicalJson", () => {
  it("gives the bytes of sorting a copy of every object, and leaves its input as it was", () => {
    const next = random(7)
    for (let i = 0; i < 2000; i++) {
      const value = randomValue(next, 0)
      const before = JSON.stringify(value)
      expect(canonicalJson(value)).toBe(reference(value))
      expect(JSON.stringify(value)).toBe(before)
    }
  })
})
