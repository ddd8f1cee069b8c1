/** Runs the built command line (`npm run build` first; `npm test` does) as a user would. */
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

export const binPath = fileURLToPath(new URL("../../dist/lxd-image-server.cjs", import.meta.url))

export const runBin = (args: ReadonlyArray<string>, options: { cwd?: string; env?: Record<string, string> } = {}) => {
  const result = spawnSync(process.execPath, [binPath, ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    encoding: "utf8",
    timeout: 60_000
  })
  // help on a terminal carries ANSI styles; tests read words, so they never depend on how stdout is set up
  const plain = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, "")
  return { code: result.status, stdout: plain(result.stdout), stderr: plain(result.stderr) }
}
