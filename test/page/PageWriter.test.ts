/**
 * The page writer of `watch`, in-process with the TestClock: a burst of requests makes one page, of the newest
 * catalog, once the interval passed; an unchanged page is not written again; a failed write is said once and
 * the next request writes.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { join } from "node:path"
import { Effect, TestClock } from "effect"
import { CatalogText } from "../../src/indexer/CatalogText.js"
import type { PageSite } from "../../src/page/CatalogPage.js"
import { startPageWriter } from "../../src/page/PageWriter.js"
import { tempDir } from "../support/Images.js"
import { product } from "../support/Products.js"
import { captureLogs } from "../support/Logs.js"
import { waitFor } from "../support/WatchProcess.js"

const site: PageSite = { url: "https://images.test", remote: "myimages", clients: ["lxc"] }

const snapshotOf = (alias: string) => {
  const text = new CatalogText()
  text.setProduct("debian:bookworm:amd64:default", product({ aliases: alias }))
  return text.snapshot()
}

const live = (what: string, check: () => boolean) => Effect.promise(() => waitFor(what, check, 5_000))

describe("the page writer of watch", () => {
  it.scoped("writes one page per interval, of the newest catalog it was handed, and nothing when it did not change", () =>
    Effect.gen(function* () {
      const root = tempDir("lis-page-writer-")
      const page = join(root, "index.html")
      const writer = yield* startPageWriter(root, site, "2 seconds")
      for (const alias of ["first/alias", "second/alias", "third/alias"]) yield* writer.request(snapshotOf(alias))
      yield* TestClock.adjust("1999 millis")
      expect(existsSync(page)).toBe(false)
      yield* TestClock.adjust("1 millis")
      yield* live("the page", () => existsSync(page))
      const text = readFileSync(page, "utf8")
      expect([text.includes("third/alias"), text.includes("first/alias"), text.includes("second/alias")]).toEqual([true, false, false])
      // the same catalog again: the file stays as it is
      const before = statSync(page)
      yield* writer.request(snapshotOf("third/alias"))
      yield* TestClock.adjust("2 seconds")
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, 200)))
      expect(statSync(page).ino).toBe(before.ino)
      yield* writer.request(snapshotOf("fourth/alias"))
      yield* TestClock.adjust("2 seconds")
      yield* live("the fourth page", () => readFileSync(page, "utf8").includes("fourth/alias"))
      expect(before.ino).not.toBe(statSync(page).ino)
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it.scoped("says a failed write once, stays up, and writes at the next request that can", () => {
    const logs = captureLogs()
    return Effect.gen(function* () {
      const root = join(tempDir("lis-page-writer-"), "gone")
      mkdirSync(root)
      const writer = yield* startPageWriter(root, site, "1 second")
      rmSync(root, { recursive: true })
      for (const alias of ["a/one", "a/two"]) {
        yield* writer.request(snapshotOf(alias))
        yield* TestClock.adjust("1 second")
        yield* live("the error", () => logs.lines.some((l) => l.includes("cannot write the catalog page")) && logs.lines.filter((l) => l.includes("tried again")).length >= 1)
      }
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, 200)))
      expect(logs.lines.filter((l) => l.includes("cannot write the catalog page"))).toHaveLength(1)
      mkdirSync(root)
      yield* writer.request(snapshotOf("a/three"))
      yield* TestClock.adjust("1 second")
      yield* live("the page", () => existsSync(join(root, "index.html")) && readFileSync(join(root, "index.html"), "utf8").includes("a/three"))
    }).pipe(Effect.provide(NodeContext.layer), Effect.provide(logs.layer))
  })
})
