/**
 * Every command's --help as a new user reads it: no unfilled `${…}` placeholder, options that may be left out
 * shown in brackets, and values named for what they are.
 */
import { describe, expect, it } from "@effect/vitest"
import { runBinAsync } from "../support/Bin.js"

const commands = ["init", "update", "add", "watch", "reload", "serve", "list", "verify", "prune", "remove", "mirror", "sync", "status"]

/** The usage line of a command's help: `$ serve [--root-dir directory] …`. */
const usage = (help: string) => help.split("\n").find((l) => l.startsWith("$ ")) ?? ""

describe("--help", () => {
  it("has no unfilled ${…} placeholder in any command's help", async () => {
    for (const command of [[], ...commands.map((c) => [c])]) {
      const out = await runBinAsync([...command, "--help"])
      expect(out.code, command.join(" ")).toBe(0)
      expect(out.stdout, command.join(" ")).not.toContain("${")
    }
  })

  it("shows repeatable options that may be left out in brackets, and --stale-after as seconds", async () => {
    const help = async (command: string) => usage((await runBinAsync([command, "--help"])).stdout)
    for (const command of ["init", "serve"]) expect(await help(command), command).toContain("[--hostname text...]")
    expect(await help("add")).toContain("[--alias text...]")
    expect(await help("sync")).toContain("[--filter text...]")
    for (const command of ["serve", "watch", "status"]) expect(await help(command), command).toContain("[--stale-after seconds]")
  })
})
