/**
 * The entry of the file watcher's thread (bundled alone as `dist/lxd-image-server.watcher.cjs`): watches the
 * folder its worker data names and posts each event to the service.
 */
import { parentPort, workerData } from "node:worker_threads"
import { collectGarbage } from "../process/CollectGarbage.js"
import { startTreeWatch } from "./TreeWatch.js"

const port = parentPort
const imagesDir = (workerData as { readonly imagesDir?: unknown } | null)?.imagesDir
if (port === null || typeof imagesDir !== "string") throw new Error("the file watcher's thread is started by the service, with the folder to watch")
startTreeWatch(imagesDir, (event) => {
  port.postMessage(event)
  // the crawl's garbage (every folder's listing) is collected at once, not bit by bit while the service works
  if (event._tag === "Ready") setImmediate(collectGarbage)
})
// the thread lives until the service ends it, also once chokidar has nothing left to watch (the images folder
// removed: the service's next look says so, and why)
port.on("message", () => undefined)
