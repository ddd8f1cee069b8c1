/** AliasBook: resolving the touched aliases only gives what resolving every claim gives. */
import { describe, expect, it } from "@effect/vitest"
import { type AliasClaim, resolveAliasClaims } from "../../src/indexer/Catalog.js"
import { AliasBook } from "../../src/publish/AliasBook.js"

/** A small seeded generator, so that a failure is the same on every run. */
const random = (seed: number) => () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)

const keys = ["a:1:amd64:default", "A:1:amd64:default", "b:1:amd64:cloud", "b:1:arm64:cloud", "c:2:amd64:default", "d:1:amd64:default", "e:1:amd64:default", "f:1:amd64:default"]
const aliasPool = ["a/1", "a/1/default", "b/1/cloud", "c/2", "c/2/default", "stable", "latest", "d/1"]
const since = ["20240101_10:00", "20240201_10:00", "20230101_10:00"]

const randomClaim = (next: () => number, key: string): AliasClaim => {
  const [os = "", release = "", arch = "", variant = ""] = key.split(":")
  // its folder-made aliases, then some that an image.yaml could add
  const folderMade = variant === "default" ? [`${os}/${release}/${variant}`.toLowerCase(), `${os}/${release}`.toLowerCase()] : [`${os}/${release}/${variant}`.toLowerCase()]
  const extra = aliasPool.filter(() => next() < 0.25)
  const pick = <A>(xs: ReadonlyArray<A>) => xs[Math.floor(next() * xs.length)]!
  return {
    key,
    arch: arch === "amd64" ? "x86_64" : "aarch64",
    types: pick([["container"], ["virtual-machine"], ["container", "virtual-machine"]] as const),
    aliases: [...new Set([...folderMade, ...extra])],
    since: pick(since)
  }
}

describe("AliasBook", () => {
  it("keeps for every product, after any sequence of changes, the aliases resolving every claim keeps, with the same clashes", () => {
    const next = random(11)
    for (let run = 0; run < 200; run++) {
      const book = new AliasBook()
      const claims = new Map<string, AliasClaim>()
      for (let step = 0; step < 12; step++) {
        const changes: Array<readonly [string, AliasClaim | undefined]> = keys
          .filter(() => next() < 0.3)
          .map((key) => [key, next() < 0.2 ? undefined : randomClaim(next, key)] as const)
        const before = new Map([...claims].map(([key]) => [key, book.kept(key)]))
        const affected = book.update(changes)
        for (const [key, claim] of changes) {
          if (claim === undefined) claims.delete(key)
          else claims.set(key, claim)
        }
        const all = resolveAliasClaims(claims.values())
        for (const key of keys) expect(book.kept(key)).toBe(all.kept.get(key))
        // a product whose kept aliases changed is among those said to be affected
        for (const [key, kept] of before) if (all.kept.get(key) !== kept) expect(affected.has(key)).toBe(true)
        expect([...book.clashes()].sort()).toEqual([...all.clashes].sort())
      }
    }
  })
})
