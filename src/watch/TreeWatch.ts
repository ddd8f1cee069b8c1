/**
 * chokidar over the images folder, telling of each event as a plain object: the one setup of the file watcher,
 * run on the service's thread (`watchTree`) or on a thread of its own (`WatcherThread.ts`). Imports nothing but
 * chokidar and a pure rule, so that the thread's bundle loads in milliseconds.
 */
import { watch } from "chokidar"
import { relative, sep } from "node:path"
import { versionKeyOf } from "../tree/VersionKey.js"

/** An event as the watcher tells it: plain data, the same on either side of a thread. */
export type PlainTreeEvent =
  | { readonly _tag: "Changed"; readonly path: string; readonly kind: string }
  | { readonly _tag: "Lost"; readonly reason: string }
  | { readonly _tag: "Ready" }

/** A new folder above version level is read and watched again this long after chokidar first told of it. */
const lookAgainAfterMs = 1000

/** chokidar over `imagesDir`, telling `send` of each event; returns what stops it. */
export const startTreeWatch = (imagesDir: string, send: (event: PlainTreeEvent) => void): (() => Promise<void>) => {
  const watcher = watch(imagesDir, { ignoreInitial: true, atomic: false, ignorePermissionErrors: true, followSymlinks: false })
  // chokidar reads a new folder, then watches it. Under load in CI it was seen to tell of a new product's
  // top folder and of nothing under it, ever after (later uploads there went unseen until the timed
  // reconcile). So each new folder above version level is added again a second later: chokidar reads it
  // again, watches what it missed, and tells of what it had not seen (as changes, not as initial files).
  const again = new Map<string, ReturnType<typeof setTimeout>>()
  watcher.on("all", (kind, path) => {
    const rel = relative(imagesDir, path).split(sep).join("/")
    if (rel === "" || rel.startsWith("..")) return
    send({ _tag: "Changed", path: rel, kind })
    if (kind === "addDir" && versionKeyOf(rel) === undefined && !again.has(path)) {
      again.set(
        path,
        setTimeout(() => {
          again.delete(path)
          if (!watcher.closed) watcher.add(path, undefined, true)
        }, lookAgainAfterMs)
      )
    }
  })
  watcher.on("error", (e) => send({ _tag: "Lost", reason: e instanceof Error ? e.message : String(e) }))
  watcher.on("ready", () => send({ _tag: "Ready" }))
  return () => {
    for (const timer of again.values()) clearTimeout(timer)
    return watcher.close()
  }
}
