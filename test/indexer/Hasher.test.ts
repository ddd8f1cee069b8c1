import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { createHash } from "node:crypto"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { makeHasher } from "../../src/indexer/Hasher.js"
import { tempDir } from "../support/Images.js"
import { combined, files } from "../support/Vectors.js"

describe("Hasher (worker pool)", () => {
  const dir = tempDir()
  for (const [name, f] of Object.entries(files)) writeFileSync(join(dir, name), f.text)
  const p = (name: string) => join(dir, name)

  it.scoped("hashes each §6 vector, and the combined fingerprint as metadata ‖ rootfs", () =>
    Effect.gen(function* () {
      const hasher = yield* makeHasher({ workers: 2 })
      for (const [name, f] of Object.entries(files)) {
        expect(yield* hasher.hash({ file: p(name), heads: [], own: true })).toEqual({ own: f.sha256, combined: [], headShas: [], headSizes: [], size: f.size })
      }
      const pairs = [["m1", "s1", combined.m1s1], ["m1", "q1", combined.m1q1], ["m2", "r2", combined.m2r2], ["m3", "q3", combined.m3q3]] as const
      const results = yield* Effect.all(pairs.map(([m, r]) => hasher.hash({ file: p(r), heads: [p(m)], own: false })), { concurrency: "unbounded" })
      expect(results.map((r) => r.combined[0])).toEqual(pairs.map(([, , c]) => c))
      expect(results.map((r) => r.own)).toEqual([undefined, undefined, undefined, undefined])
      expect(results.map((r) => r.headShas[0])).toEqual(pairs.map(([m]) => files[m].sha256))
      // the wrong order is a different fingerprint: the one Avature's server got wrong
      expect((yield* hasher.hash({ file: p("m1"), heads: [p("s1")], own: false })).combined[0]).not.toBe(combined.m1s1)
    }))

  it.scoped("gives the own and every combined hash from one read of the file", () =>
    Effect.gen(function* () {
      const hasher = yield* makeHasher({ workers: 1 })
      expect(yield* hasher.hash({ file: p("s1"), heads: [p("m1"), p("m2")], own: true })).toEqual({
        own: files.s1.sha256,
        combined: [combined.m1s1, createHash("sha256").update(files.m2.text).update(files.s1.text).digest("hex")],
        headShas: [files.m1.sha256, files.m2.sha256],
        headSizes: [21, 21],
        size: 21
      })
    }))

  it.scoped("streams files larger than one chunk, many jobs queued at once", () =>
    Effect.gen(function* () {
      const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7)
      writeFileSync(p("big"), big)
      const hasher = yield* makeHasher({ workers: 2 })
      const expected = createHash("sha256").update(big).digest("hex")
      const results = yield* Effect.all(Array.from({ length: 9 }, () => hasher.hash({ file: p("big"), heads: [], own: true })), { concurrency: "unbounded" })
      for (const r of results) expect(r).toMatchObject({ own: expected, size: big.length })
    }))

  it.scoped("reports a missing file as a HashError naming it, and goes on", () =>
    Effect.gen(function* () {
      const hasher = yield* makeHasher({ workers: 1 })
      const result = yield* Effect.either(hasher.hash({ file: p("nope"), heads: [p("m1")], own: true }))
      expect(result).toEqual(Either.left(expect.objectContaining({ _tag: "HashError", path: p("nope"), reason: "file vanished" })))
      expect((yield* hasher.hash({ file: p("m1"), heads: [], own: true })).own).toBe(files.m1.sha256)
    }))
})
