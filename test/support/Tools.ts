/**
 * Real tools the tests drive. Locally a test may skip when a tool is missing; with CI set it never skips:
 * a missing tool fails the run.
 */
import { execFileSync } from "node:child_process"

export const inCI = (): boolean => !!process.env["CI"] && process.env["CI"] !== "false"

export const hasTool = (name: string): boolean => {
  try {
    execFileSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

/**
 * True when every tool is there. In CI a missing tool throws at collection time, so the suite fails instead
 * of skipping; locally the caller skips.
 */
export const haveTools = (...names: ReadonlyArray<string>): boolean => {
  const missing = names.filter((n) => !hasTool(n))
  if (missing.length > 0 && inCI()) throw new Error(`CI is set but these tools are missing: ${missing.join(", ")}`)
  return missing.length === 0
}

export const isRoot = (): boolean => process.getuid?.() === 0

/** Root is needed for the LXD daemon; in CI not being root is a failure, not a skip. */
export const haveRoot = (): boolean => {
  if (!isRoot() && inCI()) throw new Error("CI is set but the tests do not run as root (the LXD daemon needs it)")
  return isRoot()
}
