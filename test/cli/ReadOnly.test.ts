/**
 * The read-only commands (status, list, verify, mirror status) as a person runs them from any folder: they
 * leave no default log file behind, and `status` tells bad folders (exit 2, bad input) from a service that is
 * not running (exit 1).
 */
import { describe, expect, it } from "@effect/vitest"
import { existsSync, mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { runBinAsync } from "../support/Bin.js"
import { tempDir } from "../support/Images.js"
import { makeWebRoot } from "../support/Tree.js"

describe("read-only commands", () => {
  it("status: a streams folder not ending in streams/v1 or an images folder outside the web root is bad input (exit 2, one line)", async () => {
    const w = makeWebRoot()
    const cwd = tempDir("lis-readonly-cwd-")
    const outside = tempDir("lis-readonly-outside-")
    const status = (...folders: ReadonlyArray<string>) =>
      runBinAsync(["--config", join(w.root, "none.toml"), "status", "--state-dir", join(w.root, "state"), ...folders], { cwd })
    for (const [folders, words] of [
      [["--img-dir", w.images, "--streams-dir", join(w.root, "streams")], `streams folder ${join(w.root, "streams")} must end in streams/v1`],
      [["--img-dir", outside, "--streams-dir", w.streams], `images folder ${outside} must be inside ${w.root}`],
      [["--img-dir", join(w.root, "imags"), "--streams-dir", w.streams], `images folder ${join(w.root, "imags")} does not exist`]
    ] as const) {
      const r = await status(...folders)
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr.trim().split("\n"), r.stderr).toHaveLength(1)
      expect(r.stderr).toContain(words)
    }
    // good folders and no service: 1, not running
    expect((await status("--img-dir", w.images, "--streams-dir", w.streams)).code).toBe(1)
  }, 60_000)

  it("status, list, verify, mirror status and no command leave no default log file in the current folder", async () => {
    const w = makeWebRoot()
    const cwd = tempDir("lis-readonly-cwd-")
    const config = join(cwd, "config.toml")
    writeFileSync(config, `state_dir = "${join(w.root, "state")}"\n`)
    mkdirSync(join(w.root, "state"))
    const folders = ["--img-dir", w.images, "--streams-dir", w.streams]
    const update = await runBinAsync(["--config", config, "--log-file", join(w.root, "update.log"), "update", ...folders], { cwd })
    expect(update.code, update.stderr).toBe(0)
    // no command at all prints the help: nothing to log either
    for (const args of [["status", ...folders], ["list", ...folders], ["verify", ...folders], ["mirror", "status"], []]) {
      const r = await runBinAsync(["--config", config, ...args], { cwd })
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).not.toBe(2)
      expect(existsSync(join(cwd, "lxd-image-server.log")), args.join(" ")).toBe(false)
    }
    // a command that changes things still logs to the default file
    expect((await runBinAsync(["--config", config, "update", ...folders], { cwd })).code).toBe(0)
    expect(existsSync(join(cwd, "lxd-image-server.log"))).toBe(true)
  }, 60_000)
})
