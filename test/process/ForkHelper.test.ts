import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import { closeSync, mkdtempSync, openSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startForkHelper } from "../../src/process/ForkHelper.js"

/** Whether another process could take the lock now (flock(1) in non-blocking mode). */
const freeForOthers = (file: string) => spawnSync("flock", ["--nonblock", "--exclusive", file, "true"]).status === 0

describe("ForkHelper: a small process that forks for us", () => {
  it.scoped("runs a command and hands back its status and output", () =>
    Effect.gen(function* () {
      const helper = yield* startForkHelper()
      const ok = yield* helper.run(["sh", "-c", "printf 'a\\0b'; echo oops >&2; exit 3"], 1000)
      expect(ok).toMatchObject({ code: 3, signal: 0, over: false, stderr: "oops\n" })
      expect([...ok.stdout]).toEqual([97, 0, 98])
      // many at once come back in order
      const many = yield* Effect.forEach([1, 2, 3, 4, 5], (i) => helper.run(["echo", String(i)], 100), { concurrency: 5 })
      expect(many.map((r) => r.stdout.toString())).toEqual(["1\n", "2\n", "3\n", "4\n", "5\n"])
    })
  )

  it.scoped("stops a command whose output passes the cap, and says a command cannot run", () =>
    Effect.gen(function* () {
      const helper = yield* startForkHelper()
      const big = yield* helper.run(["sh", "-c", "yes | head -c 10000000"], 1024)
      expect(big.over).toBe(true)
      expect(big.stdout.length).toBe(0)
      const missing = yield* helper.run(["no-such-command-here"], 10)
      expect(missing.code).toBe(127)
      expect(missing.stderr).toMatch(/cannot run no-such-command-here/)
    })
  )

  it.effect("takes flock(2) on the descriptor it was given, which is ours; its end lets go", () =>
    Effect.gen(function* () {
      const file = join(mkdtempSync(join(tmpdir(), "fork-helper-")), "lock")
      const fd = openSync(file, "a+")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const helper = yield* startForkHelper(fd)
          expect(yield* helper.tryLock).toBe("taken")
          expect(freeForOthers(file)).toBe(false)
          yield* helper.unlock
          expect(freeForOthers(file)).toBe(true)
          expect(yield* helper.tryLock).toBe("taken")
        })
      )
      // the helper is gone, our descriptor still holds the description: still locked until we close it
      expect(freeForOthers(file)).toBe(false)
      closeSync(fd)
      expect(freeForOthers(file)).toBe(true)
    })
  )
})
