/**
 * What a person or journald sees of the real program: log formats, the journal's priorities, help without
 * escape sequences off a terminal, the progress line on a pseudo-terminal (script(1)) and not elsewhere, and
 * the shell completions.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync, truncateSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { binPath, runBin } from "../support/Bin.js"
import { command, onTerminal, quote } from "../support/Terminal.js"
import { tempDir, writeMetadataTarball } from "../support/Images.js"
import { haveTools } from "../support/Tools.js"
import { addContainer, makeWebRoot, type WebRoot } from "../support/Tree.js"

const repoRoot = dirname(dirname(binPath))

/** Runs the program with its output untouched (runBin strips escapes). */
const raw = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const r = spawnSync(process.execPath, [binPath, ...args], { env: { ...process.env, ...env }, encoding: "utf8", timeout: 60_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** Runs the program with JOURNAL_STREAM naming its real stderr, as systemd sets it. */
const underJournal = (args: ReadonlyArray<string>) => {
  const r = spawnSync("sh", ["-c", `JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec ${command(args)}`], { encoding: "utf8", timeout: 60_000 })
  return { code: r.status, stderr: r.stderr }
}

const updateArgs = (w: WebRoot, ...globals: ReadonlyArray<string>) => [
  "--config", join(w.root, "none.toml"), "--log-file", join(w.root, "server.log"), ...globals,
  "update", "--img-dir", w.images, "--streams-dir", w.streams
]

const treeWithRefusal = () => {
  const w = makeWebRoot()
  addContainer(w, "debian/bookworm/amd64/default/20240101_10:00", "a")
  addContainer(w, "debian/bookworm/foo/default/20240101_10:00", "b")
  return w
}

describe("help and colours", () => {
  it("--help piped has no escape sequences", () => {
    const { code, stdout } = raw(["--help"])
    expect(code).toBe(0)
    expect(stdout).toContain("COMMANDS")
    expect(stdout).not.toContain("\u001b[")
    expect(raw(["update", "--help"]).stdout).not.toContain("\u001b[")
  })

  it.skipIf(!haveTools("script"))("on a terminal help is styled, unless NO_COLOR is set", () => {
    expect(onTerminal(["--help"]).out).toContain("\u001b[")
    const plain = onTerminal(["--help"], { NO_COLOR: "1" })
    expect(plain.out).toContain("COMMANDS")
    expect(plain.out).not.toContain("\u001b[")
  })
})

describe("--log-format", () => {
  it("an unknown format: one line naming the option, exit 2, nothing written", () => {
    const w = treeWithRefusal()
    const { code, stdout, stderr } = raw(updateArgs(w, "--log-format", "xml"))
    expect(code).toBe(2)
    expect(stdout).toBe("")
    expect(stderr.trim().split("\n")).toEqual(["--log-format: unknown format 'xml', expected text or json"])
    expect(existsSync(join(w.streams, "index.json"))).toBe(false)
  })

  it("an unknown log_format in the config file: the file, the line and what was expected", () => {
    const w = makeWebRoot()
    writeFileSync(join(w.root, "c.toml"), 'log_format = "xml"\n')
    const { code, stderr } = runBin(["--config", join(w.root, "c.toml"), "update"])
    expect(code).not.toBe(0)
    expect(stderr.trim()).toMatch(/c\.toml, line 1: log_format: Expected one of "text", "json", actual "xml"$/)
  })
})

describe.skipIf(!haveTools("tar", "xz", "mksquashfs"))("log lines of a real run", () => {
  it("json: every stderr line parses with time, level and message; the log file stays text", () => {
    const w = treeWithRefusal()
    const { code, stderr } = raw(updateArgs(w, "--log-format", "json"))
    expect(code).toBe(0)
    const lines = stderr.trim().split("\n").map((l) => JSON.parse(l) as { time: string; level: string; message: string })
    for (const l of lines) {
      expect(Object.keys(l).sort()).toEqual(["level", "message", "time"])
      expect(Number.isNaN(Date.parse(l.time))).toBe(false)
    }
    expect(lines.find((l) => l.level === "warning")?.message).toMatch(/^refused .*foo\/default\/20240101_10:00: unknown architecture folder 'foo'/)
    expect(lines.find((l) => l.level === "info")?.message).toMatch(/^wrote .*index\.json: 1 products, 1 versions, 1 refused/)
    const file = readFileSync(join(w.root, "server.log"), "utf8")
    expect(file).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z WARN {2}refused .*unknown architecture folder 'foo'/m)
  })

  it("from the config file: log_format = \"json\"", () => {
    const w = treeWithRefusal()
    writeFileSync(join(w.root, "c.toml"), 'log_format = "json"\n')
    const { stderr } = raw(["--config", join(w.root, "c.toml"), "update", "--img-dir", w.images, "--streams-dir", w.streams])
    for (const l of stderr.trim().split("\n")) expect(JSON.parse(l)).toHaveProperty("level")
  })

  it("under the journal: each line starts with its syslog priority and carries no timestamp", () => {
    const w = treeWithRefusal()
    const { code, stderr } = underJournal(updateArgs(w, "--verbose"))
    expect(code).toBe(0)
    const lines = stderr.trim().split("\n")
    for (const l of lines) expect(l).toMatch(/^<[3467]>(WARN |INFO |DEBUG) /)
    expect(lines.some((l) => /^<4>WARN {2}refused .*unknown architecture folder 'foo'/.test(l))).toBe(true)
    expect(lines.some((l) => /^<6>INFO {2}wrote /.test(l))).toBe(true)
    expect(lines.some((l) => l.startsWith("<7>DEBUG"))).toBe(true)
    expect(stderr).not.toMatch(/\d{4}-\d\d-\d\dT/)
    // the log file is not the journal: timestamps, no priorities
    expect(readFileSync(join(w.root, "server.log"), "utf8")).toMatch(/^\d{4}-\d\d-\d\dT\S+ WARN/m)
  })

  it("a JOURNAL_STREAM that is not stderr (inherited from a service) changes nothing", () => {
    const w = treeWithRefusal()
    const { stderr } = raw(updateArgs(w), { JOURNAL_STREAM: "1:1" })
    for (const l of stderr.trim().split("\n")) expect(l).toMatch(/^\d{4}-\d\d-\d\dT\S+ (WARN|INFO) /)
  })

  it("a fatal failure is an error line in the format chosen", () => {
    const w = makeWebRoot()
    const args = ["--config", join(w.root, "none.toml"), "--log-format", "json", "update", "--img-dir", w.images, "--streams-dir", join(w.root, "elsewhere")]
    const { code, stderr } = raw(args)
    expect(code).toBe(1)
    const line = JSON.parse(stderr.trim()) as { level: string; message: string }
    expect(line.level).toBe("error")
    expect(line.message).toMatch(/^lxd-image-server: streams folder .* must end in streams\/v1/)
  })

  it("a fatal failure under the journal is an error line", () => {
    const w = makeWebRoot()
    const { code, stderr } = underJournal(["--config", join(w.root, "none.toml"), "update", "--img-dir", w.images, "--streams-dir", join(w.root, "elsewhere")])
    expect(code).toBe(1)
    expect(stderr.trim()).toMatch(/^<3>lxd-image-server: streams folder .* must end in streams\/v1/)
  })
})

describe.skipIf(!haveTools("tar", "xz", "mksquashfs", "script"))("the progress line", () => {
  it("is drawn on a terminal, with files, bytes, throughput and time left, and wiped at the end", () => {
    const w = treeWithRefusal()
    const { code, out } = onTerminal(updateArgs(w))
    expect(code).toBe(0)
    const draws = out.split("\r").filter((s) => /files/.test(s))
    expect(draws.length).toBeGreaterThan(0)
    // wiped at the end: blanked with spaces, no escape sequences
    expect(out).toMatch(/left\r {40,}\r/)
    // the last draw may be any share: redraws are at most ten a second, and the end wipes rather than draws
    for (const d of draws) expect(d).toMatch(/\[[#-]+\] +\d{1,3}% {2}[0-2]\/2 files {2}[\d.]+ K?i?B \/ [\d.]+ KiB {2}(-- |[\d.]+ \S+)\/s {2}[-\d:]+ left/)
    // the log lines are whole, each on a line of its own
    expect(out).toMatch(/\r?\n?\d{4}-\d\d-\d\dT\S+ INFO {2}wrote /)
    expect(out).not.toContain("\u001b[")
  })

  it("moves while a big image is read, before its version is done", () => {
    const w = makeWebRoot()
    const dir = addContainer(w, "debian/bookworm/amd64/default/20240101_10:00", "a")
    // a VM disk of 384 MiB (sparse: the bytes are read and hashed all the same)
    const disk = join(dir, "disk.qcow2")
    writeFileSync(disk, Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]))
    truncateSync(disk, 384 * 1024 * 1024)
    const { code, out } = onTerminal(updateArgs(w))
    expect(code).toBe(0)
    const partial = out.split("\r").filter((s) => /\b0\/3 files {2}\d[\d.]* (KiB|MiB) \//.test(s))
    expect(partial.length, out).toBeGreaterThan(0)
  })

  it("is drawn by add while it reads, copies and hashes an image, and wiped before the fingerprint", () => {
    const w = makeWebRoot()
    const exports = tempDir()
    writeMetadataTarball(join(exports, "meta.tar.xz"))
    // a VM disk of 256 MiB (sparse: read, copied and hashed all the same)
    const disk = join(exports, "disk.qcow2")
    writeFileSync(disk, Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]))
    truncateSync(disk, 256 * 1024 * 1024)
    // a catalog there already: add publishes in place (a rebuild would draw a job of its own)
    expect(raw(updateArgs(w)).code).toBe(0)
    const { code, out } = onTerminal(["--config", join(w.root, "none.toml"), "--log-file", join(w.root, "server.log"), "add", join(exports, "meta.tar.xz"), disk, "--img-dir", w.images, "--streams-dir", w.streams])
    expect(code, out).toBe(0)
    // one job: the files read, then copied, then read again in place (three times the bytes)
    const draws = out.split("\r").filter((s) => /files/.test(s))
    expect(draws.length, out).toBeGreaterThan(0)
    for (const d of draws) expect(d).toMatch(/\[[#-]+\] +\d{1,3}% {2}[0-2]\/2 files {2}[\d.]+ [KMG]?i?B \/ 768 MiB/)
    expect(draws.some((d) => /\b0\/2 files {2}\d[\d.]* MiB \//.test(d)), out).toBe(true)
    expect(out).toMatch(/left\r {40,}\r/)
    expect(out.trim().split(/[\r\n]+/).pop()).toMatch(/^[0-9a-f]{64}$/)
  })

  it("is absent when stderr is piped, and with --quiet on a terminal", () => {
    const w = treeWithRefusal()
    const piped = raw(updateArgs(w))
    expect(piped.code).toBe(0)
    expect(piped.stderr).not.toContain("files")
    expect(piped.stderr).not.toContain("\r")
    const quiet = onTerminal(updateArgs(w, "--quiet"))
    expect(quiet.code).toBe(0)
    expect(quiet.out).toContain("wrote")
    expect(quiet.out).not.toContain("files")
  })
})

describe.skipIf(!haveTools("bash"))("shell completions", () => {
  it("are generated for bash and zsh, and bash completes a subcommand's options and a choice's cases", () => {
    const dir = tempDir()
    const made = spawnSync(process.execPath, [join(repoRoot, "scripts", "completions.mjs"), dir], { encoding: "utf8" })
    expect(made.status, made.stderr).toBe(0)
    const bash = readFileSync(join(dir, "lxd-image-server"), "utf8")
    expect(bash).toMatch(/^complete -F _lxd-image-server_bash_completions .*lxd-image-server$/m)
    const complete = (...words: ReadonlyArray<string>) =>
      spawnSync("bash", ["-c", `source ${quote(join(dir, "lxd-image-server"))}; COMP_WORDS=(${words.map(quote).join(" ")}); COMP_CWORD=${words.length - 1}; _lxd-image-server_bash_completions lxd-image-server; echo "\${COMPREPLY[*]}"`], { encoding: "utf8" }).stdout.trim()
    expect(complete("lxd-image-server", "--log-f")).toBe("--log-file --log-format")
    expect(complete("lxd-image-server", "up")).toBe("update")
    expect(complete("lxd-image-server", "--quiet", "update", "--im")).toBe("--img-dir --img_dir")
    expect(complete("lxd-image-server", "update", "--compat", "")).toBe("both lxd incus")
    const zsh = readFileSync(join(dir, "_lxd-image-server"), "utf8")
    expect(zsh.startsWith("#compdef lxd-image-server\n")).toBe(true)
    expect(zsh).toContain("--log-format")
  })
})
