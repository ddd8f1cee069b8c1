/**
 * The program exits as soon as its work is done, not once the event loop has drained; what it printed still
 * reaches a reader that reads its pipe slowly, to the last line, and a reader that stops early ends it quietly.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { binPath, runBin } from "../support/Bin.js"
import { squashfsHead, writeMetadataTarball } from "../support/Images.js"
import { haveTools } from "../support/Tools.js"
import { makeWebRoot } from "../support/Tree.js"

describe.skipIf(!haveTools("tar", "xz", "bash"))("the program's exit", () => {
  it("lets a slow reader have all of a long output (list's 600 lines, more than a pipe holds), and one that stops early end it quietly", () => {
    const w = makeWebRoot()
    const metadata = join(w.root, "lxd.tar.xz")
    writeMetadataTarball(metadata)
    const versions = 600
    for (let i = 0; i < versions; i++) {
      const dir = w.version(`os${i}/r/amd64/default/20240101_10:00`)
      mkdirSync(dir, { recursive: true })
      copyFileSync(metadata, join(dir, "lxd.tar.xz"))
      writeFileSync(join(dir, "rootfs.squashfs"), Buffer.concat([squashfsHead(4096), Buffer.alloc(4000, i % 256), Buffer.from(String(i))]))
    }
    const args = ["--config", join(w.root, "none.toml"), "--log-file", join(w.root, "log")]
    const update = runBin([...args, "update", "--img-dir", w.images, "--streams-dir", w.streams])
    expect(update.code, update.stderr).toBe(0)
    // the reader reads nothing for a second: the pipe fills, and the rest waits in the program
    const command = [process.execPath, binPath, ...args, "list", "--img-dir", w.images, "--streams-dir", w.streams].map((a) => `'${a}'`).join(" ")
    /** list's output read by `reader`, in a pipeline that fails when list does. */
    const readBy = (reader: string) => spawnSync("bash", ["-c", `set -o pipefail; ${command} | ${reader}`], { encoding: "utf8", timeout: 30_000 })
    const list = readBy("(sleep 1; cat)")
    expect(list.status, list.stderr).toBe(0)
    const out = list.stdout
    expect(out.length).toBeGreaterThan(64 * 1024)
    const lines = out.trimEnd().split("\n")
    // a header, then one line per version
    expect(lines).toHaveLength(versions + 1)
    expect(lines.filter((l) => /^os\d+:r:amd64:default/.test(l))).toHaveLength(versions)
    // a reader that stops early (head), or reads nothing at all, ends the output, quietly: no stack trace of the
    // pipe's EPIPE
    const head = readBy("head -n 2")
    expect(head.stdout.split("\n")[0]).toMatch(/^PRODUCT +VERSION/)
    expect([head.status, head.stderr]).toEqual([0, ""])
    const none = readBy("true")
    expect([none.status, none.stderr]).toEqual([0, ""])
  }, 60_000)
})
