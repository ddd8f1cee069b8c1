/**
 * Streaming sha256 on a pool of worker threads, one per core. A job reads one file once and feeds every hash
 * that needs its bytes: its own sha256 and, behind each given metadata file, the combined fingerprint
 * sha256(metadata ‖ rootfs). Splitting the own and the combined hash of one big file into two jobs puts both
 * cores on a single image; one job per file saves reading it twice when there are files enough for every core.
 * A job whose hash is no longer wanted stops between two chunks: a big rootfs beside a broken metadata file
 * must not be read in full each time the service looks at it, nor keep the next job waiting.
 */
import { availableParallelism } from "node:os"
import { Worker } from "node:worker_threads"
import { createHash } from "node:crypto"
import { closeSync, fstatSync, openSync, readFileSync } from "node:fs"
import { Data, Effect, Either, type Scope } from "effect"

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
  /**
   * Each file as fstat saw it right after opening it, heads first, then the file: whoever planned the job
   * compares them with its scan to know the bytes hashed are those of the file it planned, not of a
   * replacement renamed over it in between.
   */
  readonly identities?: ReadonlyArray<OpenedFile>
}

export interface OpenedFile {
  readonly path: string
  readonly dev: number
  readonly ino: number
  readonly size: number
  readonly mtimeMs: number
  readonly ctimeMs: number
}

export class HashError extends Data.TaggedError("HashError")<{
  readonly path: string
  readonly reason: string
}> {}

// Plain CommonJS for an eval worker: it runs the same from the TypeScript sources, the build and a bundle.
// The handler is synchronous (blocking is this thread's whole job), so posted jobs queue up in the worker and
// run back to back. Reads go into a 128 KiB buffer that stays in the core's cache between the copy and the
// hash: measured on 2 cores, 1 MiB chunks or async reads cost 40% more.
// Being synchronous, the worker cannot hear a message while it reads: a job is cancelled through shared memory
// instead. The main thread writes the job's id into its slot (id modulo the slot count); the worker looks
// there before opening anything and before each chunk, one Atomics.load per 128 KiB, and on seeing its own id
// drops the job and replies { cancelled: true }. A slot holds an exact id, so a collision can only let a
// cancelled job run on, never stop a wanted one.
const workerSource = `
const { parentPort, workerData } = require("node:worker_threads")
const { createHash } = require("node:crypto")
const { closeSync, fstatSync, openSync, readSync } = require("node:fs")
const cancelled = new Int32Array(workerData.cancelled)
const read = new BigInt64Array(workerData.read)
const chunk = Buffer.allocUnsafe(128 * 1024)
const CANCELLED = -1
const stream = (job, file, hashes, counted) => {
  if (Atomics.load(cancelled, job.slot) === job.id) return CANCELLED
  const fd = openSync(file, "r")
  let size = 0
  try {
    const st = fstatSync(fd)
    job.identities.push({ path: file, dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs })
    for (;;) {
      if (Atomics.load(cancelled, job.slot) === job.id) return CANCELLED
      const n = readSync(fd, chunk, 0, chunk.length, null)
      if (n === 0) return size
      const bytes = n === chunk.length ? chunk : chunk.subarray(0, n)
      for (const h of hashes) h.update(bytes)
      if (counted) Atomics.add(read, 0, BigInt(n))
      size += n
    }
  } finally {
    closeSync(fd)
  }
}
parentPort.on("message", ({ id, file, heads, own }) => {
  const job = { id, slot: id % cancelled.length, identities: [] }
  let current = ""
  try {
    const combined = heads.map(() => createHash("sha256"))
    const headSizes = []
    for (let i = 0; i < heads.length; i++) {
      const n = stream(job, (current = heads[i]), [combined[i]], false)
      if (n === CANCELLED) return parentPort.postMessage({ id, cancelled: true })
      headSizes.push(n)
    }
    const headShas = combined.map((h) => h.copy().digest("hex"))
    const ownHash = own ? createHash("sha256") : undefined
    const size = stream(job, (current = file), ownHash ? [ownHash, ...combined] : combined, own)
    if (size === CANCELLED) return parentPort.postMessage({ id, cancelled: true })
    parentPort.postMessage({ id, ok: true, own: ownHash && ownHash.digest("hex"), combined: combined.map((h) => h.digest("hex")), headShas, headSizes, size, identities: job.identities })
  } catch (e) {
    parentPort.postMessage({ id, ok: false, path: current, reason: e && e.code === "ENOENT" ? "file vanished" : String((e && e.message) || e) })
  }
})
`

type Reply = { readonly id: number } & (
  | ({ readonly ok: true; readonly cancelled?: undefined; readonly identities: ReadonlyArray<OpenedFile> } & HashJobResult)
  | { readonly ok: false; readonly cancelled?: undefined; readonly path: string; readonly reason: string }
  | { readonly ok?: undefined; readonly cancelled: true }
)

interface Lane {
  readonly worker: Worker
  readonly waiting: Map<number, (reply: Reply) => void>
  /** Per job slot, the id of a job cancelled and not answered yet, or 0; shared with the worker. */
  readonly cancelled: Int32Array
  /** Bytes the worker has read of files whose own hash it was asked for; shared with the worker. */
  readonly read: BigInt64Array
  /** Jobs posted and not answered yet, interrupted ones included until the worker reaches and drops them. */
  inFlight: number
  /** Ids stay in 1..2^31-1, what an Int32Array slot holds; 0 marks a free slot. */
  nextId: number
}

export interface HasherOptions {
  /** Worker threads; default: every core. */
  readonly workers?: number
}

/** Jobs queued in each worker at once, so that a worker never waits for the main thread between jobs. */
const depth = 2

/**
 * Cancel slots per worker. A worker holds about `depth` jobs, plus interrupted ones for the length of a chunk,
 * so two cancelled jobs 64 ids apart are never pending together in practice.
 */
const cancelSlots = 64

export const makeHasher = (options: HasherOptions = {}): Effect.Effect<{
  readonly hash: (job: HashJob, smallBytes?: number) => Effect.Effect<HashJobResult, HashError>
  readonly workers: number
  /** Bytes read so far by the workers of the files whose own hash was asked: each file once. */
  readonly bytesRead: () => number
}, never, Scope.Scope> =>
  Effect.gen(function* () {
    const count = Math.max(1, options.workers ?? availableParallelism())
    const lanes = yield* Effect.acquireRelease(
      Effect.sync(() =>
        Array.from({ length: count }, (): Lane => {
          const shared = new SharedArrayBuffer(cancelSlots * Int32Array.BYTES_PER_ELEMENT)
          const read = new SharedArrayBuffer(BigInt64Array.BYTES_PER_ELEMENT)
          const lane: Lane = {
            worker: new Worker(workerSource, { eval: true, workerData: { cancelled: shared, read } }),
            waiting: new Map(),
            cancelled: new Int32Array(shared),
            read: new BigInt64Array(read),
            inFlight: 0,
            nextId: 1
          }
          lane.worker.on("message", (reply: Reply) => {
            lane.inFlight--
            lane.waiting.get(reply.id)?.(reply)
            lane.waiting.delete(reply.id)
            // Freed here, where every answer lands, whatever it is: a job interrupted just as it finished leaves
            // no stale mark behind, and no mark is written once its answer is in (the canceller asks `waiting`).
            Atomics.compareExchange(lane.cancelled, reply.id % cancelSlots, reply.id, 0)
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

    const post = (job: HashJob) =>
      Effect.async<HashJobResult, HashError>((resume) => {
        const lane = lanes.reduce((a, b) => (b.inFlight < a.inFlight ? b : a))
        const id = lane.nextId
        lane.nextId = id === 0x7fffffff ? 1 : id + 1
        lane.inFlight++
        lane.waiting.set(id, (reply) =>
          resume(
            // a job is only cancelled once forgotten here, so this answer is for nobody; stated for the types
            reply.cancelled
              ? Effect.interrupt
              : reply.ok
              ? Effect.succeed({
                  own: reply.own,
                  combined: reply.combined,
                  headShas: reply.headShas,
                  headSizes: reply.headSizes,
                  size: reply.size,
                  identities: reply.identities
                })
              : Effect.fail(new HashError({ path: reply.path, reason: reply.reason }))
          )
        )
        lane.worker.postMessage({ id, file: job.file, heads: job.heads, own: job.own })
        // The permit is given back at once: the worker drops the job before its next chunk, or skips it unopened
        // if it has not started it, and its answer only brings `inFlight` down.
        return Effect.sync(() => {
          if (lane.waiting.delete(id)) Atomics.store(lane.cancelled, id % cancelSlots, id)
        })
      })

    const viaWorker = (job: HashJob) =>
      Effect.raceFirst(
        slots.withPermits(1)(post(job)),
        Effect.zipRight(crashed.await, Effect.dieMessage(`a hashing worker died: ${String(crash)}`))
      )
    // a small job costs less on this thread than its round trip to a worker (10,000 tiny versions: 9 s of
    // round trips); `smallBytes` is the size of every file the job reads, as the caller's scan saw them
    const hash = (job: HashJob, smallBytes?: number) =>
      smallBytes !== undefined && smallBytes <= inlineLimit ? Effect.suspend(() => hashHere(job)) : viaWorker(job)
    // for a progress line: the bytes of each file read once (its own hash), as they are read, not as jobs end
    const bytesRead = () => lanes.reduce((n, lane) => n + Number(Atomics.load(lane.read, 0)), 0)
    return { hash, workers: count, bytesRead } as const
  })

/** Jobs reading at most this many bytes in all are hashed on the calling thread. */
export const inlineLimit = 256 * 1024

/** One job on this thread, synchronously: the same result a worker gives. For small files only. */
export const hashHereNow = (job: HashJob): Either.Either<HashJobResult, HashError> => {
  let current = ""
  try {
    const opened: Array<OpenedFile> = []
    const read = (file: string) => {
      current = file
      const fd = openSync(file, "r")
      try {
        const s = fstatSync(fd)
        opened.push({ path: file, dev: s.dev, ino: s.ino, size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs })
        return readFileSync(fd)
      } finally {
        closeSync(fd)
      }
    }
    const heads = job.heads.map(read)
    const bytes = read(job.file)
    const combined = heads.map((h) => createHash("sha256").update(h).update(bytes).digest("hex"))
    return Either.right({
      own: job.own ? createHash("sha256").update(bytes).digest("hex") : undefined,
      combined,
      headShas: heads.map((h) => createHash("sha256").update(h).digest("hex")),
      headSizes: heads.map((h) => h.length),
      size: bytes.length,
      identities: opened
    })
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    return Either.left(new HashError({ path: current, reason: code === "ENOENT" ? "file vanished" : String((e as Error).message) }))
  }
}

const hashHere = (job: HashJob): Effect.Effect<HashJobResult, HashError> => Effect.suspend(() => hashHereNow(job))

export class Hasher extends Effect.Service<Hasher>()("lxd-image-server/Hasher", {
  scoped: makeHasher()
}) {}
