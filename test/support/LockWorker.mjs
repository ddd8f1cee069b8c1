// A process that takes the writer lock, for the tests that need several real processes (a lock between
// processes cannot be shown inside one). It runs the built module: `npm run build` first.
//
//   node LockWorker.mjs stress <streamsDir> <times> <holdMs>
//     says "ready"; then, for each line "<log>" on stdin (sent to all workers at once, so that they race),
//     takes the lock <times> times around a critical section that appends "enter"/"exit" lines to <log>
//     with O_APPEND and creates "<log>.occupied" with O_EXCL, writing "overlap" when another section
//     already holds it, and says "done". One process runs many rounds: node takes long to start.
//   node LockWorker.mjs stress-service …  the same, through the WriterLock service, prepared as watch prepares it (its fork helper's flock)
//   node LockWorker.mjs hold <streamsDir>     takes the lock, says "locked <pid>", holds it until killed
//   node LockWorker.mjs once <streamsDir>     takes the lock once; a failure goes to stderr, exit code 1
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Duration, Effect, Layer, Queue } from "effect"
import { appendFileSync, closeSync, openSync, unlinkSync } from "node:fs"
import { createInterface } from "node:readline"
import { withWriterLock, WriterLock } from "../../dist/src/indexer/WriterLock.js"

const [mode, streamsDir, times, holdMs] = process.argv.slice(2)
const say = (line) => Effect.sync(() => process.stdout.write(`${line}\n`))

const section = (log) => Effect.gen(function* () {
  const marker = `${log}.occupied`
  yield* Effect.sync(() => appendFileSync(log, `enter ${process.pid} ${process.hrtime.bigint()}\n`))
  const fd = yield* Effect.try(() => openSync(marker, "wx")).pipe(Effect.option)
  if (fd._tag === "None") yield* Effect.sync(() => appendFileSync(log, `overlap ${process.pid}\n`))
  yield* Effect.sleep(Duration.millis(Number(holdMs)))
  if (fd._tag === "Some") {
    yield* Effect.sync(() => {
      closeSync(fd.value)
      unlinkSync(marker)
    })
  }
  yield* Effect.sync(() => appendFileSync(log, `exit ${process.pid} ${process.hrtime.bigint()}\n`))
})

const rounds = (locked) => Effect.gen(function* () {
  const logs = yield* Queue.unbounded()
  const lines = createInterface({ input: process.stdin })
  lines.on("line", (log) => Queue.unsafeOffer(logs, log))
  lines.on("close", () => Queue.unsafeOffer(logs, undefined))
  yield* say("ready")
  for (;;) {
    const log = yield* Queue.take(logs)
    if (log === undefined) return
    yield* Effect.repeatN(locked(section(log)), Number(times) - 1)
    yield* say("done")
  }
})

// prepared, as watch prepares it: takings go through the fork helper
const viaService = (effect) => Effect.flatMap(WriterLock, (lock) => Effect.zipRight(lock.prepare(streamsDir), lock.withLock(streamsDir)(effect)))

const program =
  mode === "stress"
    ? rounds(withWriterLock(streamsDir))
    : mode === "stress-service"
    ? Effect.scoped(
        Effect.flatMap(Layer.build(WriterLock.Default), (context) => rounds((effect) => Effect.provide(viaService(effect), context)))
      )
    : mode === "hold"
      ? say(`locked ${process.pid}`).pipe(Effect.zipRight(Effect.never), withWriterLock(streamsDir))
      : say(`locked ${process.pid}`).pipe(withWriterLock(streamsDir))

Effect.runPromise(
  program.pipe(
    Effect.provide(NodeContext.layer),
    Effect.catchAll((e) =>
      Effect.sync(() => {
        process.stderr.write(`${e.message}\n`)
        process.exitCode = 1
      })
    )
  )
)
