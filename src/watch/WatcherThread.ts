/**
 * The entry of the file watcher's thread (bundled alone as `dist/lxd-image-server.watcher.cjs`): watches the
 * folder its worker data names, or else its first message, and posts each event to the service.
 */
import { parentPort, workerData } from "node:worker_threads"
import { collectGarbage } from "../process/CollectGarbage.js"
import { startTreeWatch } from "./TreeWatch.js"

const port = parentPort
if (port === null) throw new Error("the file watcher's thread is started by the service, with the folder to watch")
/**
 * The crawl's garbage (every folder's listing) is collected in one go, not bit by bit while the service works;
 * but not at `ready`, when the service starts its first reconcile: a full collection of this heap then took
 * the GC's helper threads from it (10,000 versions: reconcile 0.86–0.99 s beside it, 0.71–0.79 s after it).
 * A second later that reconcile is over (10,000 versions), and the collection (0.2 s) is over before the
 * service is likely to publish.
 */
const collectAfterMs = 1000

const watch = (imagesDir: string) =>
  startTreeWatch(imagesDir, (event) => {
    port.postMessage(event)
    if (event._tag === "Ready") setTimeout(collectGarbage, collectAfterMs)
  })

const folderOf = (data: unknown) => (typeof data === "object" && data !== null && "imagesDir" in data && typeof data.imagesDir === "string" ? data.imagesDir : undefined)
// the folder comes with the thread's start, or, for a thread the launcher started before the program loaded
// (see process/EarlyThreads.ts), in the service's first message; the thread lives until the service ends it, also
// once chokidar has nothing left to watch (the images folder removed: the service's next look says so, and why)
let watching = false
const start = (imagesDir: string | undefined) => {
  if (watching || imagesDir === undefined) return
  watching = true
  watch(imagesDir)
}
start(folderOf(workerData))
port.on("message", (message: unknown) => start(folderOf(message)))
