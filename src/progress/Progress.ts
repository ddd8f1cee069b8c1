/**
 * Progress of a long job (hashing a whole tree, checking it, copying it), for a person at a terminal: a
 * command says how much there is (`start`), what is done (`advance`) and that it is over (`done`). Without a
 * terminal, or with `--quiet`, nothing is drawn: the default value of the tag is silent, so code that reports
 * progress needs no layer, and the service (`watch`) reports into the void.
 */
import { Clock, Context, Duration, Effect, Fiber, Layer, Option, Schedule, type Scope } from "effect"
import { renderProgress } from "./ProgressBar.js"
import { clearStatus, showStatus } from "./StatusLine.js"

export interface ProgressReporter {
  /** A new job: its files and bytes in all. */
  readonly start: (totalFiles: number, totalBytes: number) => Effect.Effect<void>
  /** Some of it done. Cheap: a terminal is redrawn at most ten times a second. */
  readonly advance: (files: number, bytes: number) => Effect.Effect<void>
  /** The job is over (or stopped): the line is wiped, the log goes on below. */
  readonly done: () => Effect.Effect<void>
}

export const silentProgress: ProgressReporter = {
  start: () => Effect.void,
  advance: () => Effect.void,
  done: () => Effect.void
}

export class Progress extends Context.Reference<Progress>()("lxd-image-server/Progress", {
  defaultValue: (): ProgressReporter => silentProgress
}) {}

export interface StatusSink {
  readonly show: (text: string) => void
  readonly clear: () => void
  /** The terminal's width now (it may be resized). */
  readonly columns: () => number
}

const stderrSink: StatusSink = {
  show: showStatus,
  clear: clearStatus,
  columns: () => process.stderr.columns || 80
}

/** Redraws from `advance` at most this often; the clock is redrawn every second even when nothing moves. */
const minRedraw = Duration.millis(100)
const tick = Duration.seconds(1)

/** A reporter that draws a progress line on `sink`; it lives, with its ticking fiber, in the given scope. */
export const makeTerminalProgress = (sink: StatusSink): Effect.Effect<ProgressReporter, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    let job: { totalFiles: number; totalBytes: number; files: number; bytes: number; startedAt: number; drawnAt: number } | undefined
    let ticker: Option.Option<Fiber.RuntimeFiber<unknown>> = Option.none()

    const draw = (now: number) => {
      if (!job) return
      job.drawnAt = now
      sink.show(renderProgress({ ...job, elapsedMs: now - job.startedAt }, sink.columns()))
    }
    const stopTicker = Option.match(ticker, { onNone: () => Effect.void, onSome: Fiber.interrupt })

    const start = (totalFiles: number, totalBytes: number) =>
      Effect.gen(function* () {
        yield* Effect.suspend(() => stopTicker)
        const now = yield* Clock.currentTimeMillis
        job = { totalFiles, totalBytes, files: 0, bytes: 0, startedAt: now, drawnAt: now }
        draw(now)
        ticker = Option.some(
          yield* Clock.currentTimeMillis.pipe(
            Effect.map(draw),
            Effect.repeat(Schedule.spaced(tick)),
            Effect.delay(tick),
            Effect.forkIn(scope)
          )
        )
      })

    const advance = (files: number, bytes: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.sync(() => {
          if (!job) return
          job.files += files
          job.bytes += bytes
          if (now - job.drawnAt >= Duration.toMillis(minRedraw)) draw(now)
        })
      )

    const done = () =>
      Effect.suspend(() => stopTicker).pipe(
        Effect.zipRight(
          Effect.sync(() => {
            ticker = Option.none()
            if (job) sink.clear()
            job = undefined
          })
        )
      )

    yield* Effect.addFinalizer(() => done())
    return { start, advance, done } satisfies ProgressReporter
  })

/**
 * Runs `work` while telling `progress` of the bytes a counter (a worker pool's, `bytesRead`) moves by, ten times
 * a second and once at the end: a big file moves the line while it is read, not only once it is done. Nothing
 * runs when no one shows progress (the service).
 */
export const followBytes =
  (progress: ProgressReporter, bytesRead: () => number) =>
  <A, E, R>(work: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
    if (progress === silentProgress) return work
    let reported = bytesRead()
    const report = Effect.suspend(() => {
      const now = bytesRead()
      const delta = now - reported
      reported = now
      return delta > 0 ? progress.advance(0, delta) : Effect.void
    })
    return Effect.gen(function* () {
      const poller = yield* Effect.fork(Effect.repeat(Effect.delay(report, "100 millis"), Schedule.forever))
      return yield* work.pipe(Effect.ensuring(Fiber.interrupt(poller).pipe(Effect.zipRight(report))))
    })
  }

/** Progress drawn on stderr, when it is a terminal and `quiet` is off; else silent. */
export const ProgressLive = (options: { readonly quiet: boolean }): Layer.Layer<Progress> =>
  options.quiet || !process.stderr.isTTY ? Layer.succeed(Progress, silentProgress) : Layer.scoped(Progress, makeTerminalProgress(stderrSink))
