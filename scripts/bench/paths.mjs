import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))
export const repo = join(here, "..", "..")
/** The program measured: this checkout's build, or BENCH_BIN (another build, for a comparison). */
export const bin = process.env.BENCH_BIN ?? join(repo, "dist", "lxd-image-server.cjs")
export const rssHook = join(repo, "scripts", "report-rss.cjs")
export const chokidarAlone = join(here, "chokidar-alone.mjs")
export const benchDir = process.env.BENCH_DIR ?? join(tmpdir(), "lis-bench")
