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
import { closeSync, fstatSync, openSync, readSync } from "node:fs"
import { Data, Effect, Either, type Scope } from "effect"
import { earlyHashWorkers, hashWorkerBoot, takeEarlyThread } from "../process/EarlyThreads.js"

export interface HashJob {
  /** The file read once, to its end. */
  readonly file: string
  /** Files whose bytes come first, one combined hash each: sha256(head ‖ file). */
  readonly heads: ReadonlyArray<string>
  /** Also the file's own sha256. */
  readonly own: boolean
  /**
   * Refuse a file that is not what its name says (no squashfs, qcow2, xz, gzip or zstd magic at its start:
   * looked at before anything is hashed), or that is cut short where its format tells its length (a squashfs,
   * an xz file): what is published must be whole. `verify` leaves it off, to report the sizes and hashes that
   * differ.
   */
  readonly whole?: boolean | undefined
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

/**
 * One hash job, as plain JavaScript source: the one definition that both the workers and the calling thread
 * run (small jobs cost less here than their round trip to a worker). A source string, not a function, because
 * a worker is started from source (`eval`), and the bundle renames identifiers and wraps functions to keep
 * their names: a function's text would refer to names that do not exist in the worker. Evaluated, it is a
 * factory: given node's crypto and fs calls and a read buffer, it returns `run(job, stopped, counted)`, which
 * reads each head, then the file, once, feeds every hash that needs the bytes, and records each file's
 * identity right after opening it. `stopped()` is asked before opening anything and before each chunk (a job
 * no longer wanted stops there); `counted(n)` hears the bytes read of a file whose own hash was asked.
 * Reads go into a 128 KiB buffer that stays in the core's cache between the copy and the hash: measured on 2
 * cores, 1 MiB chunks or async reads cost 40% more.
 */
const hashJobSource = `(({ createHash, openSync, fstatSync, readSync, closeSync }, chunk) => {
  const CANCELLED = -1
  const head = Buffer.alloc(48)
  // a file that is not what its name says (50 GB of zeros named rootfs.squashfs): refused before it is read,
  // by the magic its format starts with; a name no format is known by is not looked at
  const magics = [
    [/[.]squashfs$/, "68737173", "a squashfs (it does not start with hsqs)"],
    [/([.]qcow2|^disk-kvm[.]img)$/, "514649fb", "a qcow2 disk (it does not start with the qcow2 magic QFI)"],
    [/[.]xz$/, "fd377a585a00", "an xz file (it does not start with its magic bytes)"],
    [/[.]gz$/, "1f8b", "a gzip file (it does not start with its magic bytes)"],
    [/[.]zst$/, "28b52ffd", "a zstd file (it does not start with its magic bytes)"]
  ]
  const startsRight = (fd, file) => {
    const name = file.slice(file.lastIndexOf("/") + 1)
    const format = magics.find(([re]) => re.test(name))
    if (format === undefined) return
    const want = format[1].length / 2
    const n = readSync(fd, head, 0, want, 0)
    if (n < want || head.toString("hex", 0, want) !== format[1]) throw new Error("not " + format[2])
  }
  // a file cut short (a copy stopped by a full disk, with its final name) whose format says how long it is:
  // a squashfs's 96-byte superblock gives its bytes (at 40, after the magic "hsqs"); an xz stream is at least
  // 32 bytes (header, index, footer) and ends with its footer's "YZ", then only stream padding: zero bytes, 4
  // at a time. A cut file ends anywhere, often in zeros (a block header's, or a preallocated file's rest).
  const tail = Buffer.alloc(4096)
  const whole = (fd, file, size) => {
    const at = (n, position) => readSync(fd, head, 0, n, position)
    // one read of the superblock's start, as many as before this check: 100,000 tiny versions read it each
    if (/[.]squashfs$/.test(file) && at(Math.min(size, 48), 0) >= 4 && head.toString("latin1", 0, 4) === "hsqs") {
      if (size < 96) throw new Error("truncated: shorter than a squashfs superblock (96 bytes), the file has " + size)
      const used = Number(head.readBigUInt64LE(40))
      if (used > size) throw new Error("truncated: its squashfs superblock says " + used + " bytes, the file has " + size)
    }
    if (/[.]xz$/.test(file) && at(6, 0) === 6 && head.toString("hex", 0, 6) === "fd377a585a00") {
      if (size < 32) throw new Error("truncated: shorter than the smallest xz stream (32 bytes), the file has " + size)
      const n = readSync(fd, tail, 0, Math.min(size, tail.length), size - Math.min(size, tail.length))
      let end = n
      while (end > 0 && tail[end - 1] === 0) end--
      if ((n - end) % 4 !== 0 || end < 2 || tail.toString("latin1", end - 2, end) !== "YZ") {
        throw new Error("truncated: an xz stream ends with its footer (YZ, then zero bytes 4 at a time), and this file does not")
      }
    }
    return size
  }
  // \`checked\`: the whole-file checks; \`named\`: also the magic its name promises (not for a metadata tarball,
  // which the metadata reader refuses first, with a better reason)
  const stream = (file, hashes, stopped, counted, identities, checked, named) => {
    if (stopped()) return CANCELLED
    const fd = openSync(file, "r")
    let size = 0
    try {
      const st = fstatSync(fd)
      identities.push({ path: file, dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs })
      if (checked && named) startsRight(fd, file)
      for (let chunks = 1; ; chunks++) {
        if (stopped()) return CANCELLED
        // a file deleted while it is read (its version removed during the hash of a big rootfs) is not read on
        // to its end: every 64 MiB, one fstat
        if (chunks % 512 === 0 && fstatSync(fd).nlink === 0) throw Object.assign(new Error("deleted while it was hashed"), { code: "ENOENT" })
        const n = readSync(fd, chunk, 0, chunk.length, null)
        if (n === 0) return checked ? whole(fd, file, size) : size
        const bytes = n === chunk.length ? chunk : chunk.subarray(0, n)
        for (const h of hashes) h.update(bytes)
        if (counted) counted(n)
        size += n
      }
    } finally {
      closeSync(fd)
    }
  }
  return ({ file, heads, own, whole: checked }, stopped, counted) => {
    const identities = []
    let current = ""
    try {
      const combined = heads.map(() => createHash("sha256"))
      const headSizes = []
      for (let i = 0; i < heads.length; i++) {
        const n = stream((current = heads[i]), [combined[i]], stopped, undefined, identities, checked)
        if (n === CANCELLED) return { cancelled: true }
        headSizes.push(n)
      }
      const headShas = combined.map((h) => h.copy().digest("hex"))
      const ownHash = own ? createHash("sha256") : undefined
      const size = stream((current = file), ownHash ? [ownHash, ...combined] : combined, stopped, own ? counted : undefined, identities, checked, true)
      if (size === CANCELLED) return { cancelled: true }
      return { ok: true, own: ownHash && ownHash.digest("hex"), combined: combined.map((h) => h.digest("hex")), headShas, headSizes, size, identities }
    } catch (e) {
      return { ok: false, path: current, reason: e && e.code === "ENOENT" ? "file vanished" : String((e && e.message) || e) }
    }
  }
})`

/** What a job gives, wherever it ran. */
type JobOutcome =
  | ({ readonly ok: true; readonly cancelled?: undefined; readonly identities: ReadonlyArray<OpenedFile> } & HashJobResult)
  | { readonly ok: false; readonly cancelled?: undefined; readonly path: string; readonly reason: string }
  | { readonly ok?: undefined; readonly cancelled: true }

type RunJob = (job: HashJob, stopped: () => boolean, counted: ((n: number) => void) | undefined) => JobOutcome

// The worker: plain CommonJS, run the same from the TypeScript sources, the build and the bundle, as the body
// of a function of require, parentPort and workerData (hashWorkerBoot runs it on its first message). The handler
// is synchronous (blocking is this thread's whole job), so posted jobs queue up in the worker and run back to
// back. Being synchronous, the worker cannot hear a message while it reads: a job is cancelled through shared
// memory instead. The main thread writes the job's id into its slot (id modulo the slot count); the worker
// looks there before opening anything and before each chunk, one Atomics.load per 128 KiB, and on seeing its
// own id drops the job and replies { cancelled: true }. A slot holds an exact id, so a collision can only let a
// cancelled job run on, never stop a wanted one.
const workerSource = `
const cancelled = new Int32Array(workerData.cancelled)
const read = new BigInt64Array(workerData.read)
const { createHash } = require("node:crypto")
const { openSync, fstatSync, readSync, closeSync } = require("node:fs")
const run = ${hashJobSource}({ createHash, openSync, fstatSync, readSync, closeSync }, Buffer.allocUnsafe(128 * 1024))
const count = (n) => Atomics.add(read, 0, BigInt(n))
parentPort.on("message", ({ id, file, heads, own, whole }) => {
  const slot = id % cancelled.length
  parentPort.postMessage({ id, ...run({ file, heads, own, whole }, () => Atomics.load(cancelled, slot) === id, count) })
})
`

type Reply = { readonly id: number } & JobOutcome

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
  readonly start: () => void
}, never, Scope.Scope> =>
  Effect.gen(function* () {
    const count = Math.max(1, options.workers ?? availableParallelism())
    // A worker that dies (out of memory, a bug) fails the whole service: no part of it may die silently.
    const crashed = yield* Effect.makeLatch(false)
    let crash: unknown
    /**
     * The workers, started by the first job that needs one: `list` and `verify` often hash nothing, and
     * `update` of tiny versions hashes them all on this thread.
     */
    let started: ReadonlyArray<Lane> | undefined
    const startLanes = (): ReadonlyArray<Lane> =>
      Array.from({ length: count }, (): Lane => {
        const shared = new SharedArrayBuffer(cancelSlots * Int32Array.BYTES_PER_ELEMENT)
        const read = new SharedArrayBuffer(BigInt64Array.BYTES_PER_ELEMENT)
        // one the launcher started (EarlyThreads), still waiting for its code, or a new one
        const worker = takeEarlyThread(earlyHashWorkers.key) ?? new Worker(hashWorkerBoot, { eval: true })
        worker.ref()
        worker.postMessage({ source: workerSource, data: { cancelled: shared, read } })
        const lane: Lane = {
          worker,
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
        lane.worker.once("error", (e) => {
          crash = e
          Effect.runSync(crashed.open)
        })
        return lane
      })
    const lanesNow = () => (started ??= startLanes())
    yield* Effect.addFinalizer(() => Effect.promise(() => Promise.all((started ?? []).map((l) => l.worker.terminate()))))
    const slots = yield* Effect.makeSemaphore(count * depth)

    const post = (job: HashJob) =>
      Effect.async<HashJobResult, HashError>((resume) => {
        const lane = lanesNow().reduce((a, b) => (b.inFlight < a.inFlight ? b : a))
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
        lane.worker.postMessage({ id, file: job.file, heads: job.heads, own: job.own, whole: job.whole })
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
    const bytesRead = () => (started ?? []).reduce((n, lane) => n + Number(Atomics.load(lane.read, 0)), 0)
    /** Starts the workers now, if they are not running: a caller that knows big files are coming saves their start-up. */
    const start = () => void lanesNow()
    return { hash, workers: count, bytesRead, start } as const
  })

/** Jobs reading at most this many bytes in all are hashed on the calling thread. */
export const inlineLimit = 256 * 1024

/** The job runner of this thread, made at first use: the same source the workers run. */
let runHere: RunJob | undefined
const notStopped = () => false

/** One job on this thread, synchronously: the same code, and the same result, as on a worker. For small files only. */
export const hashHereNow = (job: HashJob): Either.Either<HashJobResult, HashError> => {
  runHere ??= (new Function("deps", "chunk", `return ${hashJobSource}(deps, chunk)`) as (deps: unknown, chunk: Buffer) => RunJob)(
    { createHash, openSync, fstatSync, readSync, closeSync },
    Buffer.allocUnsafe(128 * 1024)
  )
  const outcome = runHere(job, notStopped, undefined)
  if (outcome.ok) {
    const { ok: _, cancelled: __, ...result } = outcome
    return Either.right(result)
  }
  return Either.left(new HashError(outcome.cancelled ? { path: job.file, reason: "cancelled" } : { path: outcome.path, reason: outcome.reason }))
}

const hashHere = (job: HashJob): Effect.Effect<HashJobResult, HashError> => Effect.suspend(() => hashHereNow(job))

export class Hasher extends Effect.Service<Hasher>()("lxd-image-server/Hasher", {
  scoped: makeHasher()
}) {}
