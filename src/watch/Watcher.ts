/**
 * File events under the images folder, from chokidar, as a scoped Stream of paths relative to that folder.
 * Events are hints, not the truth: an `error` from the watcher becomes a `Lost` event, after which the service
 * reconciles the whole tree.
 */
import { watch } from "chokidar"
import { Data, Effect, Stream } from "effect"
import { relative, sep } from "node:path"

export type TreeEvent = Data.TaggedEnum<{
  /** Something changed at this path (relative to the images folder, `/`-separated). */
  Changed: { readonly path: string; readonly kind: string }
  /** The watcher lost events or failed: only a full scan tells the truth now. */
  Lost: { readonly reason: string }
  /** Every folder is watched: a scan from now on misses nothing that an event would not bring. */
  Ready: {}
}>
export const TreeEvent = Data.taggedEnum<TreeEvent>()

export const watchTree = (imagesDir: string): Stream.Stream<TreeEvent> =>
  Stream.asyncScoped<TreeEvent>(
    (emit) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const watcher = watch(imagesDir, { ignoreInitial: true, atomic: false, ignorePermissionErrors: true, followSymlinks: false })
          watcher.on("all", (kind, path) => {
            const rel = relative(imagesDir, path).split(sep).join("/")
            if (rel !== "" && !rel.startsWith("..")) void emit.single(TreeEvent.Changed({ path: rel, kind }))
          })
          watcher.on("error", (e) => void emit.single(TreeEvent.Lost({ reason: e instanceof Error ? e.message : String(e) })))
          watcher.on("ready", () => void emit.single(TreeEvent.Ready()))
          return watcher
        }),
        (watcher) => Effect.promise(() => watcher.close())
      ),
    "unbounded"
  )
