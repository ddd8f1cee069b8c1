/**
 * The progress line of `verify` and `prune` on a pseudo-terminal (script(1)): files and bytes done, throughput
 * and time left, wiped at the end; and nothing of it when stderr is piped or with --quiet.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { existsSync, truncateSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { binPath, runBin } from "../support/Bin.js"
import { onTerminal } from "../support/Terminal.js"
import { haveTools } from "../support/Tools.js"
import { addContainer, makeWebRoot, type WebRoot } from "../support/Tree.js"

const key = "debian/bookworm/amd64/default"
const globals = (w: WebRoot) => ["--config", join(w.root, "none.toml"), "--log-file", join(w.root, "server.log")]
const folders = (w: WebRoot) => ["--img-dir", w.images, "--streams-dir", w.streams, "--state-dir", join(w.root, "state")]
const verifyArgs = (w: WebRoot, ...more: ReadonlyArray<string>) => [...globals(w), ...more, "verify", ...folders(w)]
const pruneArgs = (w: WebRoot, ...more: ReadonlyArray<string>) => [...globals(w), ...more, "prune", ...folders(w), "--grace", "0"]

/** Draws of the progress line in what a terminal showed: each redraw starts with a carriage return. */
const draws = (out: string) => out.split("\r").filter((s) => /\d+\/\d+ files/.test(s))
const drawShape = /\[[#-]+\] +\d{1,3}% {2}\d+\/\d+ files {2}[\d.]+ [KMG]?i?B \/ [\d.]+ [KMG]?i?B {2}(-- |[\d.]+ \S+)\/s {2}[-\d:]+ left/

/** A tree of two versions, one with a 384 MiB VM disk (sparse, read all the same), published by `update`. */
const published = () => {
  const w = makeWebRoot()
  addContainer(w, `${key}/20240101_10:00`, "a")
  const big = addContainer(w, `${key}/20240102_10:00`, "b")
  const disk = join(big, "disk.qcow2")
  writeFileSync(disk, Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]))
  truncateSync(disk, 384 * 1024 * 1024)
  const r = runBin([...globals(w), "update", "--img-dir", w.images, "--streams-dir", w.streams, "--state-dir", join(w.root, "state")])
  expect(r.code, r.stderr).toBe(0)
  return w
}

/** Withdraws the older version now, with no grace: its files are due at the next `prune`. */
const withdrawOldest = (w: WebRoot) => {
  const removed = runBin([...globals(w), "remove", ...folders(w), "--grace", "0", `${key.split("/").join(":")}@20240101_10:00`])
  expect(removed.code, removed.stderr).toBe(0)
}

/** Runs the command on a terminal: it succeeds, draws progress lines of `files` files in all, and wipes the last. */
const drawnAndWiped = (args: ReadonlyArray<string>, files: number) => {
  const { code, out } = onTerminal(args)
  expect(code, out).toBe(0)
  const shown = draws(out)
  expect(shown.length, out).toBeGreaterThan(0)
  for (const d of shown) expect(d).toMatch(drawShape)
  expect(shown[0]).toContain(` 0/${files} files`)
  expect(out).toMatch(/left\r {40,}\r/)
  return { out, shown }
}

describe.skipIf(!haveTools("tar", "xz", "mksquashfs", "script"))("the progress line of verify and prune", () => {
  it("verify: drawn on a terminal while the files are read, the bytes moving before the big file is done, then wiped", () => {
    const w = published()
    // every file the catalog names: two metadata tarballs, two squashfs, the disk
    const { out, shown } = drawnAndWiped(verifyArgs(w), 5)
    expect(shown.some((d) => /MiB \/ 384/.test(d) && !/ 5\/5 files/.test(d)), out).toBe(true)
    expect(out).toMatch(/INFO {2}verified 2 versions, 5 files/)
    expect(out).not.toContain("\u001b[")
  }, 120_000)

  it("prune: drawn while withdrawn versions' files are deleted, then wiped", () => {
    const w = published()
    withdrawOldest(w)
    const { out } = drawnAndWiped(pruneArgs(w), 2)
    expect(out).toContain("deleted 1 withdrawn")
    expect(existsSync(w.version(`${key}/20240101_10:00`))).toBe(false)
  }, 120_000)

  it("is absent when stderr is piped, and with --quiet on a terminal", () => {
    const w = published()
    const piped = spawnSync(process.execPath, [binPath, ...verifyArgs(w)], { encoding: "utf8", timeout: 60_000 })
    expect(piped.status, piped.stderr).toBe(0)
    expect(draws(piped.stderr)).toEqual([])
    expect(piped.stderr).not.toContain("\r")
    const quiet = onTerminal(verifyArgs(w, "--quiet"))
    expect(quiet.code).toBe(0)
    expect(quiet.out).toContain("verified 2 versions")
    expect(draws(quiet.out)).toEqual([])
    withdrawOldest(w)
    const quietPrune = onTerminal(pruneArgs(w, "--quiet"))
    expect(quietPrune.code).toBe(0)
    expect(quietPrune.out).toContain("deleted 1 withdrawn")
    expect(draws(quietPrune.out)).toEqual([])
  }, 120_000)
})
