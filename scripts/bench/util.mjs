// Shared helpers of the bench: statistics, goal lines, bounded waits, /proc readers, child processes.
import { readFileSync } from "node:fs"

export const MiB = 1024 * 1024

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** min, median, max of some numbers (the median of an even count is the mean of the two middle ones). */
export const stats = (values) => {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return { min: NaN, med: NaN, max: NaN, n: 0 }
  const mid = Math.floor(v.length / 2)
  const med = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2
  return { min: v[0], med, max: v[v.length - 1], n: v.length }
}

/** "1.23 s (1.20–1.23–1.31, 5 runs)": the median first, then min–median–max. */
export const fmt = (s, digits = 2, unit = "s") => {
  if (!Number.isFinite(s.med)) return "n/a"
  const f = (x) => x.toFixed(digits)
  const u = unit ? ` ${unit}` : ""
  return s.n === 1 ? `${f(s.med)}${u} (1 run)` : `${f(s.med)}${u} (${f(s.min)}–${f(s.med)}–${f(s.max)}, ${s.n} runs)`
}

/** "met" or "NOT met" for a figure against an upper bound. */
export const verdict = (value, limit) => (Number.isFinite(value) && value <= limit ? "met" : "NOT met")

/** One figure, printed as it comes (the tables at the end repeat them). */
export const line = (label, text) => console.log(`   ${label.padEnd(44)}: ${text}`)

/** Runs `fn` `runs` times, or fewer when the runs so far took more than `budgetSeconds` in all. */
export const repeat = async (runs, budgetSeconds, fn) => {
  const out = []
  const started = performance.now()
  for (let i = 0; i < runs; i++) {
    out.push(await fn(i))
    if ((performance.now() - started) / 1000 > budgetSeconds) break
  }
  return out
}

/** Polls `probe` every `everyMs` until it returns something other than undefined; fails after `timeoutMs`. */
export const until = async (what, timeoutMs, probe, everyMs = 20) => {
  const started = performance.now()
  for (;;) {
    const got = await probe()
    if (got !== undefined) return got
    if (performance.now() - started > timeoutMs) throw new BenchError(`timed out after ${(timeoutMs / 1000).toFixed(0)} s waiting for ${what}`)
    await sleep(everyMs)
  }
}

export class BenchError extends Error {}

const clockTicks = 100 // CLK_TCK on Linux
/** CPU seconds (user + system) of a process so far, all its threads included. */
export const cpuSeconds = (pid) => {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ") // fields from the 3rd (state) on
  return (Number(fields[11]) + Number(fields[12])) / clockTicks // utime (14th) + stime (15th)
}

/** VmRSS and VmHWM (peak) of a process, in MiB. */
export const memory = (pid = "self") => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = (key) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN)
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 }
}

export const loadAverage = () => Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0])

/** Every child the bench started, killed if the bench stops early. */
export const children = new Set()
const killAll = () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL")
}
process.on("exit", killAll)
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => { killAll(); process.exit(130) })
export const track = (child) => {
  children.add(child)
  child.once("exit", () => children.delete(child))
  return child
}
