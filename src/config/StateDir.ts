/** The state folder (the publisher's journal, status.json, fallback pidfile): the given one if writable, else a per-user one, with a warning. */
import { FileSystem, Path } from "@effect/platform"
import { homedir } from "node:os"
import { Effect } from "effect"


export const userStateDir = (path: Path.Path) =>
  path.join(process.env["XDG_STATE_HOME"] || path.join(homedir(), ".local", "state"), "lxd-image-server")

export const writableStateDir = (wanted: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const usable = (dir: string) =>
      fs.makeDirectory(dir, { recursive: true }).pipe(
        Effect.zipRight(fs.access(dir, { readable: true, writable: true })),
        Effect.as(true),
        Effect.orElseSucceed(() => false)
      )
    if (yield* usable(wanted)) return wanted
    const fallback = userStateDir(path)
    yield* Effect.logWarning(`state folder ${wanted} is not writable: using ${fallback}`)
    if (!(yield* usable(fallback))) yield* Effect.fail(new Error(`no writable state folder (tried ${wanted} and ${fallback})`))
    return fallback
  })

/**
 * The state folder a reader uses (`update` reads the withdrawals): the given one when it exists, else the
 * per-user one `watch` falls back to when that exists, else the given one. Creates nothing.
 */
export const readableStateDir = (wanted: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    if (yield* fs.exists(wanted).pipe(Effect.orElseSucceed(() => false))) return wanted
    const fallback = userStateDir(path)
    return (yield* fs.exists(fallback).pipe(Effect.orElseSucceed(() => false))) ? fallback : wanted
  })
