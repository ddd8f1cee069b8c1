/**
 * File events under the images folder, from chokidar, as a scoped Stream of paths relative to that folder.
 * Events are hints, not the truth: an `error` from the watcher becomes a `Lost` event, after which the service
 * reconciles the whole tree.
 */
import { watch } from "chokidar"
import { Data, Effect, Stream } from "effect"
import { relative, sep } from "node:path"
import { versionKeyOf } from "../publish/Publisher.js"

export type TreeEvent = Data.TaggedEnum<{
  /** Something changed at this path (relative to the images folder, `/`-separated). */
  Changed: { readonly path: string; readonly kind: string }
  /** The watcher lost events or failed: only a full scan tells the truth now. */
  Lost: { readonly reason: string }
  /** Every folder is watched: a scan from now on misses nothing that an event would not bring. */
  Ready: {}
}>
export const TreeEvent = Data.taggedEnum<TreeEvent>()

/** A new folder above version level is read and watched again this long after chokidar first told of it. */
const lookAgainAfterMs = 1000

export const watchTree = (imagesDir: string): Stream.Stream<TreeEvent> =>
  Stream.asyncScoped<TreeEvent>(
    (emit) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const watcher = watch(imagesDir, { ignoreInitial: true, atomic: false, ignorePermissionErrors: true, followSymlinks: false })
          // chokidar reads a new folder, then watches it. Under load in CI it was seen to tell of a new product's
          // top folder and of nothing under it, ever after (later uploads there went unseen until the timed
          // reconcile). So each new folder above version level is added again a second later: chokidar reads it
          // again, watches what it missed, and tells of what it had not seen (as changes, not as initial files).
          const again = new Map<string, ReturnType<typeof setTimeout>>()
          watcher.on("all", (kind, path) => {
            const rel = relative(imagesDir, path).split(sep).join("/")
            if (rel === "" || rel.startsWith("..")) return
            void emit.single(TreeEvent.Changed({ path: rel, kind }))
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
          watcher.on("error", (e) => void emit.single(TreeEvent.Lost({ reason: e instanceof Error ? e.message : String(e) })))
          watcher.on("ready", () => void emit.single(TreeEvent.Ready()))
          return { watcher, again }
        }),
        ({ again, watcher }) =>
          Effect.promise(() => {
            for (const timer of again.values()) clearTimeout(timer)
            return watcher.close()
          })
      ),
    "unbounded"
  )
