/** Runs the built command line (`npm run build` first; `npm test` does) as a user would. */
import { spawn, spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

export const binPath = fileURLToPath(new URL("../../dist/lxd-image-server.cjs", import.meta.url))

// help output always carries ANSI escapes (@effect/cli has no NO_COLOR)
const plain = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, "")

export const runBin = (args: ReadonlyArray<string>, options: { cwd?: string; env?: Record<string, string> } = {}) => {
  const result = spawnSync(process.execPath, [binPath, ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    encoding: "utf8",
    timeout: 60_000
  })
  // help on a terminal carries ANSI styles; tests read words, so they never depend on how stdout is set up
  return { code: result.status, stdout: plain(result.stdout), stderr: plain(result.stderr) }
}

/**
 * `runBin` without blocking the test worker: a test that runs many commands on a loaded machine would
 * otherwise starve vitest's own messages ("Timeout calling onTaskUpdate").
 */
export const runBinAsync = (args: ReadonlyArray<string>, options: { cwd?: string; env?: Record<string, string> } = {}) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [binPath, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, timeout: 120_000 })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    child.once("error", reject)
    child.once("close", (code) => resolve({ code, stdout: plain(stdout), stderr: plain(stderr) }))
  })
