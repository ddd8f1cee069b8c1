/** Files replaced whole: an empty one too (a push of an empty catalog writes an empty file list). */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync, rmSync } from "node:fs"
import { join } from "node:path"
import { writeFileAtomic } from "../../src/indexer/AtomicFile.js"
import { tempDir } from "../support/Images.js"

describe("writeFileAtomic", () => {
  it.effect("writes an empty file, and replaces it with text", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const target = join(dir, "files")
      yield* writeFileAtomic(target, "")
      expect(readFileSync(target, "utf8")).toBe("")
      yield* writeFileAtomic(target, new TextEncoder().encode("a\0"))
      expect(readFileSync(target, "utf8")).toBe("a\0")
      rmSync(dir, { recursive: true })
    }).pipe(Effect.provide(NodeContext.layer))
  )
})
