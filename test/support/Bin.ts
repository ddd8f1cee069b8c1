/** Runs the built command line (`npm run build` first; `npm test` does) as a user would. */
import { spawn, spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

export const binPath = fileURLToPath(new URL("../../dist/lxd-image-server.cjs", import.meta.url))

export const runBin = (args: ReadonlyArray<string>, options: { cwd?: string; env?: Record<string, string> } = {}) => {
  const result = spawnSync(process.execPath, [binPath, ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    encoding: "utf8",
    timeout: 60_000
  })
  // help output always carries ANSI escapes (@effect/cli has no NO_COLOR)
  const plain = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, "")
  return { code: result.status, stdout: plain(result.stdout), stderr: plain(result.stderr) }
}

/** The same, without blocking the event loop: a reader loop in the test goes on meanwhile. */
export const runBinAsync = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [binPath, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    child.once("close", (code) => resolve({ code, stdout, stderr }))
  })
