/**
 * `watch --metrics-file PATH`: the metrics as a textfile for node-exporter's textfile collector, since `watch`
 * opens no socket. Replaced whole (temp file and rename, so the collector never reads half a file) after each
 * report of the service (each turn of its loop that did work, every generation among them), at most once a
 * second, and looked at every few seconds besides (mirror lag and the catalog's lag grow with time). Unchanged
 * text is written again once a minute, so that the file's age (node_textfile_mtime_seconds) tells that the
 * service lives. Nothing is written before the service's first report: zeros would say the catalog is empty.
 */
import { FileSystem, Path } from "@effect/platform"
import { Clock, Duration, Effect, Queue, Stream } from "effect"
import { writeFileAtomic } from "../indexer/AtomicFile.js"
import type { HealthFeed } from "./MetricsFeed.js"

/** Between two looks when the service says nothing. */
export const metricsFileEvery = Duration.seconds(10)
/** The same text is written again after this long: the file's mtime says the service is alive. */
export const metricsFileRefresh = Duration.seconds(60)
/** At most one write in this window: a busy service reports several times a second. */
const coalesce = Duration.seconds(1)

/** Why the metrics file cannot be written there, or undefined: its folder must exist, be a folder and be writable. */
export const metricsFileProblem = (target: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const dir = path.dirname(path.resolve(target))
    const info = yield* fs.stat(dir).pipe(Effect.option)
    if (info._tag === "None") return `--metrics-file ${target}: the folder ${dir} does not exist`
    if (info.value.type !== "Directory") return `--metrics-file ${target}: ${dir} is not a folder`
    // the file is replaced by a rename, so only the folder needs to be writable (by this user, on a writable mount)
    const writable = yield* fs.access(dir, { writable: true }).pipe(Effect.either)
    if (writable._tag === "Left") return `--metrics-file ${target}: the folder ${dir} is not writable by this user`
    const file = yield* fs.stat(target).pipe(Effect.option)
    if (file._tag === "Some" && file.value.type === "Directory") return `--metrics-file ${target}: is a folder`
    if (!path.basename(target).endsWith(".prom")) yield* Effect.logWarning(`--metrics-file ${target}: node-exporter's textfile collector reads only *.prom files`)
    return undefined
  })

/** Writes the metrics to `target` until the scope closes. A failed write is said once and tried again. */
export const writeMetricsFile = (target: string, feed: HealthFeed) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const wake = yield* Queue.sliding<void>(1)
    yield* feed.reports.pipe(Stream.runForEach(() => Queue.offer(wake, undefined)), Effect.forkScoped)
    let written = ""
    let writtenAt = 0
    let failure = ""
    const write = Effect.gen(function* () {
      if (!(yield* feed.reported)) return
      const text = yield* feed.render
      const now = yield* Clock.currentTimeMillis
      if (text === written && now - writtenAt < Duration.toMillis(metricsFileRefresh)) return
      const done = yield* Effect.either(writeFileAtomic(target, text))
      if (done._tag === "Right") {
        written = text
        writtenAt = now
        if (failure !== "") yield* Effect.logInfo(`the metrics file ${target} is written again`)
        failure = ""
      } else if (done.left.message !== failure) {
        failure = done.left.message
        yield* Effect.logError(`cannot write the metrics file ${target}: ${failure}; tried again at the next change`)
      }
    }).pipe(Effect.provideService(FileSystem.FileSystem, fs), Effect.provideService(Path.Path, path))
    yield* Queue.take(wake).pipe(
      Effect.timeoutOption(metricsFileEvery),
      Effect.zipRight(write),
      Effect.zipRight(Effect.sleep(coalesce)),
      Effect.forever,
      Effect.forkScoped
    )
  })
