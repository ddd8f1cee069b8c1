/**
 * chokidar reads a folder's listing, then watches it: a folder made in between is never told of, nor anything
 * under it, until the folder it is in changes again. During the first crawl (whose folders are not told of) the
 * tree watch looks for such folders once the crawl is done, and watches them.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { createRequire, syncBuiltinESMExports } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type PlainTreeEvent, startTreeWatch } from "../../src/watch/TreeWatch.js"
import { waitFor } from "../support/WatchProcess.js"

const fsPromises = createRequire(import.meta.url)("node:fs/promises") as typeof import("node:fs/promises")
const readdir = fsPromises.readdir

/** Makes `made` right after the first listing of `folder` is read: an uploader racing the crawl. */
const makeAfterListing = (folder: string, made: string) => {
  let done = false
  Object.assign(fsPromises, {
    readdir: async (...args: Parameters<typeof readdir>) => {
      const listing = await readdir(...args)
      if (!done && args[0] === folder) {
        done = true
        mkdirSync(made, { recursive: true })
      }
      return listing
    }
  })
  // chokidar's readdirp imports readdir from node:fs/promises: its binding follows the module's object
  syncBuiltinESMExports()
}

const stops: Array<() => Promise<void>> = []
afterEach(async () => {
  Object.assign(fsPromises, { readdir })
  syncBuiltinESMExports()
  await Promise.all(stops.splice(0).map((stop) => stop()))
})

describe("the tree watch", () => {
  it("watches a folder made in one its first crawl had just read, and tells what lands in it", async () => {
    const images = mkdtempSync(join(tmpdir(), "lis-crawl-"))
    const product = join(images, "debian", "bookworm", "amd64", "default")
    mkdirSync(join(product, "20240101_10:00"), { recursive: true })
    const version = join(product, "20240102_10:00")
    makeAfterListing(product, version)
    const events: Array<PlainTreeEvent> = []
    stops.push(startTreeWatch(images, (e) => void events.push(e)))
    await waitFor("the end of the crawl", () => events.some((e) => e._tag === "Ready"))
    // nothing of the first crawl is told of
    expect(events[0]).toEqual({ _tag: "Ready" })
    writeFileSync(join(version, "rootfs.squashfs"), "x")
    await waitFor("the event of the rootfs", () =>
      events.some((e) => e._tag === "Changed" && e.path === "debian/bookworm/amd64/default/20240102_10:00/rootfs.squashfs")
    , 5_000)
    expect(events).toContainEqual({ _tag: "Changed", path: "debian/bookworm/amd64/default/20240102_10:00", kind: "addDir" })
    expect(events.filter((e) => e._tag === "Changed" && e.path.endsWith("20240101_10:00"))).toEqual([])
  }, 30_000)
})
