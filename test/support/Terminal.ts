/** Runs the built command line on a pseudo-terminal (script(1)), as a person at a terminal would. */
import { spawnSync } from "node:child_process"
import { binPath } from "./Bin.js"

/** A word for sh, quoted. */
export const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

/** The shell words that run the program with these arguments. */
export const command = (args: ReadonlyArray<string>) => [process.execPath, binPath, ...args].map(quote).join(" ")

/** Runs the program on a pseudo-terminal: stdout and stderr are the terminal; `out` is what it showed, untouched. */
export const onTerminal = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const r = spawnSync("script", ["-qfec", command(args), "/dev/null"], { env: { ...process.env, ...env }, encoding: "utf8", timeout: 60_000 })
  return { code: r.status, out: r.stdout }
}
