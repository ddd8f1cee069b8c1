/**
 * The launcher's start: the V8 code cache the build writes beside the bundle is accepted by a plain `node`
 * start. V8 refuses a cache made while other flags were in force; a module that set one as it loaded (the
 * watch service's --expose-gc) made every command start 0.3 s slower, with no error to tell. The launcher sets
 * that flag before it loads the bundle, so that the build's run that makes the cache (an `update`, which sets
 * it again) and every later start agree.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { binPath, runBin } from "../support/Bin.js"

const bundle = binPath.replace(/\.cjs$/, ".bundle.cjs")

// compiled as the launcher compiles it (which first sets the one flag the program sets), in a process with no
// flags of its own
const probe = `
const fs = require("node:fs"), vm = require("node:vm"), { wrap } = require("node:module")
require("node:v8").setFlagsFromString("--expose-gc")
const file = ${JSON.stringify(bundle)}
const script = new vm.Script(wrap(fs.readFileSync(file, "utf8")), { filename: file, cachedData: fs.readFileSync(file + ".cache"), importModuleDynamically: vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER })
process.stdout.write(String(script.cachedDataRejected))
`

describe("launcher", () => {
  it("starts with the code cache the build made: V8 accepts it", () => {
    const { NODE_OPTIONS: _, ...env } = process.env
    const out = spawnSync(process.execPath, ["-e", probe], { encoding: "utf8", env })
    expect(out.stderr).toBe("")
    expect(out.stdout).toBe("false")
  })

  it("starts hash workers for a command that hashes at once; unused, they do not keep the process alive", () => {
    // `update --help` hashes nothing: the launcher starts the workers all the same, and nothing takes them
    const started = performance.now()
    const out = runBin(["update", "--help"])
    expect(out.code).toBe(0)
    expect(out.stdout).toMatch(/Rebuild index\.json and images\.json/)
    expect(performance.now() - started).toBeLessThan(20_000)
  })
})
