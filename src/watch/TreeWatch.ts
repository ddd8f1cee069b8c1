/**
 * chokidar over the images folder, telling of each event as a plain object: the one setup of the file watcher,
 * run on the service's thread (`watchTree`) or on a thread of its own (`WatcherThread.ts`). Imports nothing but
 * chokidar and a pure rule, so that the thread's bundle loads in milliseconds.
 */
import { type FSWatcher, watch } from "chokidar"
import { readdirSync } from "node:fs"
import { join, relative, sep } from "node:path"
import { foldersAboveVersions, versionKeyOf } from "../tree/VersionKey.js"

/** An event as the watcher tells it: plain data, the same on either side of a thread. */
export type PlainTreeEvent =
  | { readonly _tag: "Changed"; readonly path: string; readonly kind: string }
  | { readonly _tag: "Lost"; readonly reason: string }
  | { readonly _tag: "Ready" }

/** A new folder above version level is read and watched again this long after chokidar first told of it. */
const lookAgainAfterMs = 1000

/**
 * The folders down to version level that chokidar's first crawl did not see. chokidar reads a folder's listing,
 * then watches it: a folder made in between (an upload racing the crawl) is never told of, nor anything under it,
 * until the folder it is in changes again. Looked for after the crawl, when every folder it saw is watched.
 */
const unseenFolders = (watcher: FSWatcher, imagesDir: string): Array<string> => {
  const unseen: Array<string> = []
  const look = (dir: string, depth: number) => {
    // chokidar's own record of each folder's entries (`getWatched()` copies and sorts all of it, files too)
    const known = watcher._watched.get(dir)
    let entries
    try {
      entries = readdirSync(dir, { withFileTypes: true })
    } catch {
      return // gone meanwhile: its removal is told of
    }
    for (const entry of entries) {
      if (!entry.isDirectory()) continue
      const folder = join(dir, entry.name)
      if (known?.has(entry.name) !== true) unseen.push(folder)
      else if (depth < foldersAboveVersions) look(folder, depth + 1)
    }
  }
  look(imagesDir, 0)
  return unseen
}

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
  watcher.on("ready", () => {
    send({ _tag: "Ready" })
    // a second later, not beside the service's first reconcile: what is missed till then is told of all the
    // same, as each missed folder is added as new (`addDir`, then every file in it), then watched
    const look = setTimeout(() => {
      again.delete(imagesDir)
      if (!watcher.closed) for (const folder of unseenFolders(watcher, imagesDir)) watcher.add(folder, undefined, true)
    }, lookAgainAfterMs)
    again.set(imagesDir, look)
  })
  return () => {
    for (const timer of again.values()) clearTimeout(timer)
    return watcher.close()
  }
}
