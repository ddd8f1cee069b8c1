/**
 * Streaming sha256 on a pool of worker threads, one per core. A job reads one file once and feeds every hash
 * that needs its bytes: its own sha256 and, behind each given metadata file, the combined fingerprint
 * sha256(metadata ‖ rootfs). Splitting the own and the combined hash of one big file into two jobs puts both
 * cores on a single image; one job per file saves reading it twice when there are files enough for every core.
 */
import { availableParallelism } from "node:os"
import { Worker } from "node:worker_threads"
import { Data, Effect, type Scope } from "effect"

export interface HashJob {
  /** The file read once, to its end. */
  readonly file: string
  /** Files whose bytes come first, one combined hash each: sha256(head ‖ file). */
  readonly heads: ReadonlyArray<string>
  /** Also the file's own sha256. */
  readonly own: boolean
}

export interface HashJobResult {
  readonly own: string | undefined
  /** sha256(head ‖ file) for each head, in order. */
  readonly combined: ReadonlyArray<string>
  /** sha256(head) for each head, in order. */
  readonly headShas: ReadonlyArray<string>
  /** Bytes read from each head, in order. */
  readonly headSizes: ReadonlyArray<number>
  /** Bytes read from the file. */
  readonly size: number
}

export class HashError extends Data.TaggedError("HashError")<{
  readonly path: string
  readonly reason: string
}> {}

// Plain CommonJS for an eval worker: it runs the same from the TypeScript sources, the build and a bundle.
// The handler is synchronous (blocking is this thread's whole job), so posted jobs queue up in the worker and
// run back to back. Reads go into a 128 KiB buffer that stays in the core's cache between the copy and the
// hash: measured on 2 cores, 1 MiB chunks or async reads cost 40% more.
const workerSource = `
const { parentPort } = require("node:worker_threads")
const { createHash } = require("node:crypto")
const { closeSync, openSync, readSync } = require("node:fs")
const chunk = Buffer.allocUnsafe(128 * 1024)
const stream = (file, hashes) => {
  const fd = openSync(file, "r")
  let size = 0
  try {
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null)
      if (n === 0) return size
      const bytes = n === chunk.length ? chunk : chunk.subarray(0, n)
      for (const h of hashes) h.update(bytes)
      size += n
    }
  } finally {
    closeSync(fd)
  }
}
parentPort.on("message", ({ id, file, heads, own }) => {
  let current = ""
  try {
    const combined = heads.map(() => createHash("sha256"))
    const headSizes = heads.map((head, i) => stream((current = head), [combined[i]]))
    const headShas = combined.map((h) => h.copy().digest("hex"))
    const ownHash = own ? createHash("sha256") : undefined
    const size = stream((current = file), ownHash ? [ownHash, ...combined] : combined)
    parentPort.postMessage({ id, ok: true, own: ownHash && ownHash.digest("hex"), combined: combined.map((h) => h.digest("hex")), headShas, headSizes, size })
  } catch (e) {
    parentPort.postMessage({ id, ok: false, path: current, reason: e && e.code === "ENOENT" ? "file vanished" : String((e && e.message) || e) })
  }
})
`

type Reply = { readonly id: number } & (
  | ({ readonly ok: true } & HashJobResult)
  | { readonly ok: false; readonly path: string; readonly reason: string }
)

interface Lane {
  readonly worker: Worker
  readonly waiting: Map<number, (reply: Reply) => void>
  /** Jobs posted and not answered yet, interrupted ones included: the worker still runs them. */
  inFlight: number
}

export interface HasherOptions {
  /** Worker threads; default: every core. */
  readonly workers?: number
}

/** Jobs queued in each worker at once, so that a worker never waits for the main thread between jobs. */
const depth = 2

export const makeHasher = (options: HasherOptions = {}): Effect.Effect<{
  readonly hash: (job: HashJob) => Effect.Effect<HashJobResult, HashError>
  readonly workers: number
}, never, Scope.Scope> =>
  Effect.gen(function* () {
    const count = Math.max(1, options.workers ?? availableParallelism())
    const lanes = yield* Effect.acquireRelease(
      Effect.sync(() =>
        Array.from({ length: count }, (): Lane => {
          const lane: Lane = { worker: new Worker(workerSource, { eval: true }), waiting: new Map(), inFlight: 0 }
          lane.worker.on("message", (reply: Reply) => {
            lane.inFlight--
            lane.waiting.get(reply.id)?.(reply)
            lane.waiting.delete(reply.id)
          })
          return lane
        })
      ),
      (all) => Effect.promise(() => Promise.all(all.map((l) => l.worker.terminate())))
    )
    // A worker that dies (out of memory, a bug) fails the whole service: no part of it may die silently.
    const crashed = yield* Effect.makeLatch(false)
    let crash: unknown
    for (const lane of lanes) {
      lane.worker.once("error", (e) => {
        crash = e
        Effect.runSync(crashed.open)
      })
    }
    const slots = yield* Effect.makeSemaphore(count * depth)
    let nextId = 0

    const post = (job: HashJob) =>
      Effect.async<HashJobResult, HashError>((resume) => {
        const lane = lanes.reduce((a, b) => (b.inFlight < a.inFlight ? b : a))
        const id = nextId++
        lane.inFlight++
        lane.waiting.set(id, (reply) =>
          resume(
            reply.ok
              ? Effect.succeed({
                  own: reply.own,
                  combined: reply.combined,
                  headShas: reply.headShas,
                  headSizes: reply.headSizes,
                  size: reply.size
                })
              : Effect.fail(new HashError({ path: reply.path, reason: reply.reason }))
          )
        )
        lane.worker.postMessage({ id, file: job.file, heads: job.heads, own: job.own })
        return Effect.sync(() => lane.waiting.delete(id))
      })

    const hash = (job: HashJob) =>
      Effect.raceFirst(
        slots.withPermits(1)(post(job)),
        Effect.zipRight(crashed.await, Effect.dieMessage(`a hashing worker died: ${String(crash)}`))
      )
    return { hash, workers: count } as const
  })

export class Hasher extends Effect.Service<Hasher>()("lxd-image-server/Hasher", {
  scoped: makeHasher()
}) {}
