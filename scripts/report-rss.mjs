// Preloaded with `node --import` by the bench: prints the process's peak RSS (worker threads included) at exit.
import { writeSync } from "node:fs"
process.on("exit", () => {
  writeSync(2, `\nBENCH_MAX_RSS_KB=${process.resourceUsage().maxRSS}\n`)
})
