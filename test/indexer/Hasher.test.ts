import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
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
        expect(yield* hasher.hashFiles([p(name)])).toEqual({ sha256: f.sha256, sizes: [f.size] })
      }
      const pairs = [["m1", "s1", combined.m1s1], ["m1", "q1", combined.m1q1], ["m2", "r2", combined.m2r2], ["m3", "q3", combined.m3q3]] as const
      const results = yield* Effect.all(pairs.map(([m, r]) => hasher.hashFiles([p(m), p(r)])), { concurrency: "unbounded" })
      expect(results.map((r) => r.sha256)).toEqual(pairs.map(([, , c]) => c))
      // the wrong order is a different fingerprint: the one Avature's server got wrong
      expect((yield* hasher.hashFiles([p("s1"), p("m1")])).sha256).not.toBe(combined.m1s1)
    }))

  it.scoped("streams files larger than one chunk", () =>
    Effect.gen(function* () {
      const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7)
      writeFileSync(p("big"), big)
      const hasher = yield* makeHasher({ workers: 1 })
      const { createHash } = yield* Effect.promise(() => import("node:crypto"))
      expect(yield* hasher.hashFiles([p("big")])).toEqual({ sha256: createHash("sha256").update(big).digest("hex"), sizes: [big.length] })
    }))

  it.scoped("reports a missing file as a HashError naming it", () =>
    Effect.gen(function* () {
      const hasher = yield* makeHasher({ workers: 1 })
      const result = yield* Effect.either(hasher.hashFiles([p("m1"), p("nope")]))
      expect(result).toEqual(Either.left(expect.objectContaining({ _tag: "HashError", path: p("nope"), reason: "file vanished" })))
      expect((yield* hasher.hashFiles([p("m1")])).sha256).toBe(files.m1.sha256)
    }))
})
