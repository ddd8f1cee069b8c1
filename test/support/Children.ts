/** This test process's children, read from /proc. */
import { readdirSync, readFileSync } from "node:fs"

/** The pids of this process's children running `command` (their comm, as /proc shows it). */
export const childrenRunning = (command: string): Array<string> =>
  readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .flatMap((p) => {
      try {
        const [, comm, ppid] = /^\d+ \((.*)\) \S+ (\d+)/.exec(readFileSync(`/proc/${p}/stat`, "utf8")) ?? []
        return comm === command && Number(ppid) === process.pid ? [p] : []
      } catch {
        return [] // it ended while we looked
      }
    })
