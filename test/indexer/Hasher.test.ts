import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber } from "effect"
import { execFileSync } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { closeSync, constants, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { hashHereNow, makeHasher } from "../../src/indexer/Hasher.js"
import { earlyHashWorkers, hashWorkerBoot } from "../../src/process/EarlyThreads.js"
import { Worker } from "node:worker_threads"
import { readdirSync } from "node:fs"
import { tempDir } from "../support/Images.js"
import { combined, files } from "../support/Vectors.js"

describe("Hasher (worker pool)", () => {
  const dir = tempDir()
  for (const [name, f] of Object.entries(files)) writeFileSync(join(dir, name), f.text)
  const p = (name: string) => join(dir, name)

  it.scoped("hashes each §6 vector, and the combined fingerprint as metadata ‖ rootfs", () =>
    Effect.gen(function* () {
      const hasher = yield* makeHasher({ workers: 2 })
      for (const [name, f] of Object.entries(files)) {
        expect(yield* hasher.hash({ file: p(name), heads: [], own: true })).toMatchObject({ own: f.sha256, combined: [], headShas: [], headSizes: [], size: f.size })
      }
      const pairs = [["m1", "s1", combined.m1s1], ["m1", "q1", combined.m1q1], ["m2", "r2", combined.m2r2], ["m3", "q3", combined.m3q3]] as const
      const results = yield* Effect.all(pairs.map(([m, r]) => hasher.hash({ file: p(r), heads: [p(m)], own: false })), { concurrency: "unbounded" })
      expect(results.map((r) => r.combined[0])).toEqual(pairs.map(([, , c]) => c))
      expect(results.map((r) => r.own)).toEqual([undefined, undefined, undefined, undefined])
      expect(results.map((r) => r.headShas[0])).toEqual(pairs.map(([m]) => files[m].sha256))
      // the wrong order is a different fingerprint: the one Avature's server got wrong
      expect((yield* hasher.hash({ file: p("m1"), heads: [p("s1")], own: false })).combined[0]).not.toBe(combined.m1s1)
    }))

  it.scoped("counts the bytes its workers read of each file once, for a progress line", () =>
    Effect.gen(function* () {
      const hasher = yield* makeHasher({ workers: 2 })
      const big = join(dir, "big")
      writeFileSync(big, Buffer.alloc(3 * 1024 * 1024 + 5, 7))
      expect(hasher.bytesRead()).toBe(0)
      yield* hasher.hash({ file: big, heads: [p("m1")], own: true })
      expect(hasher.bytesRead()).toBe(3 * 1024 * 1024 + 5)
      // the second read of a file for a combined hash alone, and the heads, are not counted again
      yield* hasher.hash({ file: big, heads: [p("m1")], own: false })
      expect(hasher.bytesRead()).toBe(3 * 1024 * 1024 + 5)
    }))

  it.scoped("gives the own and every combined hash from one read of the file", () =>
    Effect.gen(function* () {
      const hasher = yield* makeHasher({ workers: 1 })
      expect(yield* hasher.hash({ file: p("s1"), heads: [p("m1"), p("m2")], own: true })).toMatchObject({
        own: files.s1.sha256,
        combined: [combined.m1s1, createHash("sha256").update(files.m2.text).update(files.s1.text).digest("hex")],
        headShas: [files.m1.sha256, files.m2.sha256],
        headSizes: [21, 21],
        size: 21
      })
    }))

  it.scoped("streams files larger than one chunk, many jobs queued at once", () =>
    Effect.gen(function* () {
      const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7)
      writeFileSync(p("big"), big)
      const hasher = yield* makeHasher({ workers: 2 })
      const expected = createHash("sha256").update(big).digest("hex")
      const results = yield* Effect.all(Array.from({ length: 9 }, () => hasher.hash({ file: p("big"), heads: [], own: true })), { concurrency: "unbounded" })
      for (const r of results) expect(r).toMatchObject({ own: expected, size: big.length })
    }))

  it.scoped("reports a missing file as a HashError naming it, and goes on", () =>
    Effect.gen(function* () {
      const hasher = yield* makeHasher({ workers: 1 })
      const result = yield* Effect.either(hasher.hash({ file: p("nope"), heads: [p("m1")], own: true }))
      expect(result).toEqual(Either.left(expect.objectContaining({ _tag: "HashError", path: p("nope"), reason: "file vanished" })))
      expect((yield* hasher.hash({ file: p("m1"), heads: [], own: true })).own).toBe(files.m1.sha256)
    }))

  /**
   * A sparse file that takes seconds to read (here 1 GiB takes 1 to 5 s on 2 cores, 4 GiB up to 20 s on busy
   * ones), against under 200 ms for a stopped job to give way even then: the 1 s bound below tells the two
   * apart without failing on a loaded machine.
   */
  const largeFile = (name: string) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        closeSync(openSync(p(name), "w"))
        truncateSync(p(name), 4 * 1024 ** 3)
        return p(name)
      }),
      (path) => Effect.sync(() => rmSync(path, { force: true }))
    )

  it.scopedLive("stops reading a file whose hash is interrupted, so the next job starts at once", () =>
    Effect.gen(function* () {
      const large = yield* largeFile("large")
      const hasher = yield* makeHasher({ workers: 1 })
      const running = yield* Effect.fork(hasher.hash({ file: large, heads: [], own: true }))
      yield* Effect.sleep("100 millis")
      yield* Fiber.interrupt(running)
      const interrupted = performance.now()
      const tiny = yield* hasher.hash({ file: p("m1"), heads: [], own: true })
      const waited = performance.now() - interrupted
      expect(tiny.own).toBe(files.m1.sha256)
      expect(waited).toBeLessThan(1000)
    }))

  it.scopedLive("skips, unopened, a queued job whose hash is interrupted", () =>
    Effect.gen(function* () {
      const large = yield* largeFile("large-queued")
      const hasher = yield* makeHasher({ workers: 1 })
      // Opening a FIFO blocks until a writer comes: a worker that opened it would hang, and the tiny job with it.
      // The finalizer (run before the pool's) plays that writer so that a failing test still ends.
      const fifo = p("fifo")
      execFileSync("mkfifo", [fifo])
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          try {
            closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK))
          } catch {
            // no reader: the worker never opened it
          }
          rmSync(fifo)
        })
      )
      const running = yield* Effect.fork(hasher.hash({ file: large, heads: [], own: true }))
      const queued = yield* Effect.fork(hasher.hash({ file: fifo, heads: [], own: true }))
      yield* Effect.sleep("100 millis")
      yield* Fiber.interrupt(queued)
      yield* Fiber.interrupt(running)
      const interrupted = performance.now()
      const tiny = yield* hasher.hash({ file: p("m1"), heads: [], own: true }).pipe(Effect.timeout("5 seconds"))
      expect(tiny.own).toBe(files.m1.sha256)
      expect(performance.now() - interrupted).toBeLessThan(1000)
    }))

  it.scoped("tells what each file it read was right after opening it: heads, then the file", () =>
    Effect.gen(function* () {
      const hasher = yield* makeHasher({ workers: 1 })
      const result = yield* hasher.hash({ file: p("s1"), heads: [p("m1"), p("m2")], own: true })
      expect(result.identities).toEqual(
        [p("m1"), p("m2"), p("s1")].map((path) => {
          const { dev, ino, size, mtimeMs, ctimeMs } = statSync(path)
          return { path, dev, ino, size, mtimeMs, ctimeMs }
        })
      )
    }))

  it.scoped("hashes a job on this thread with the workers' own code: the same result, and the same errors", () =>
    Effect.gen(function* () {
      const hasher = yield* makeHasher({ workers: 1 })
      const big = join(dir, "here-big")
      writeFileSync(big, Buffer.alloc(300 * 1024 + 3, 5))
      for (const job of [
        { file: p("s1"), heads: [p("m1"), p("m2")], own: true },
        { file: big, heads: [p("m1")], own: false },
        { file: big, heads: [], own: true }
      ]) {
        const here = hashHereNow(job)
        expect(Either.isRight(here)).toBe(true)
        expect(here).toEqual(Either.right(yield* hasher.hash(job)))
      }
      const missing = { file: p("nope"), heads: [p("m1")], own: true }
      expect(hashHereNow(missing)).toEqual(Either.left(expect.objectContaining({ _tag: "HashError", path: p("nope"), reason: "file vanished" })))
      expect(yield* Effect.either(hasher.hash(missing))).toEqual(hashHereNow(missing))
    }))

  it.scoped("starts its worker threads only when a job needs one", () =>
    Effect.gen(function* () {
      const threads = () => readdirSync("/proc/self/task").length
      const before = threads()
      const hasher = yield* makeHasher({ workers: 2 })
      // a small job runs on this thread
      expect((yield* hasher.hash({ file: p("s1"), heads: [p("m1")], own: true }, 42)).combined[0]).toBe(combined.m1s1)
      expect(threads()).toBe(before)
      yield* hasher.hash({ file: p("s1"), heads: [p("m1")], own: true })
      expect(threads()).toBeGreaterThanOrEqual(before + 2)
    }))

  /** A whole squashfs and a whole tar.xz of 200 KB of random bytes, named `<name>.squashfs` and `<name>.tar.xz`. */
  const wholeFiles = (name: string) => {
    const tree = tempDir()
    writeFileSync(join(tree, "f"), randomBytes(200_000))
    const squashfs = join(dir, `${name}.squashfs`)
    execFileSync("mksquashfs", [tree, squashfs, "-noappend", "-quiet", "-no-progress"], { stdio: "ignore" })
    const xz = join(dir, `${name}.tar.xz`)
    execFileSync("tar", ["-cJf", xz, "-C", tree, "f"])
    return { squashfs, xz }
  }

  it.scoped("refuses a squashfs or an xz file cut short, as its own format tells, on a worker and on this thread, when asked", () =>
    Effect.gen(function* () {
      const hasher = yield* makeHasher({ workers: 1 })
      const { squashfs, xz } = wholeFiles("whole")
      // whole: hashed as ever
      for (const file of [squashfs, xz]) expect(Either.isRight(hashHereNow({ file, heads: [], own: true, whole: true }))).toBe(true)
      // cut short, as by a copy stopped by a full disk
      for (const [file, reason] of [[squashfs, /^truncated: its squashfs superblock says \d+ bytes, the file has \d+$/], [xz, /^truncated: an xz stream ends/]] as const) {
        const cut = `${file}.cut${file.slice(file.indexOf("."))}`
        writeFileSync(cut, readFileSync(file).subarray(0, Math.floor(statSync(file).size / 2)))
        expect(hashHereNow({ file: cut, heads: [], own: true, whole: true })).toEqual(Either.left(expect.objectContaining({ path: cut, reason: expect.stringMatching(reason) })))
        expect(yield* Effect.flip(hasher.hash({ file: cut, heads: [], own: true, whole: true }, 0))).toEqual(expect.objectContaining({ path: cut, reason: expect.stringMatching(reason) }))
        // verify asks for no such check: it reports the size and the hashes that differ
        expect(Either.isRight(hashHereNow({ file: cut, heads: [], own: true }))).toBe(true)
      }
    }))

  it.scoped("refuses a squashfs or an xz file too short for its superblock or its header and footer, or ending in zeros that are no stream padding", () =>
    Effect.gen(function* () {
      const hasher = yield* makeHasher({ workers: 1 })
      const { squashfs, xz } = wholeFiles("short")
      const whole = readFileSync(xz)
      const cases: ReadonlyArray<readonly [string, Buffer, RegExp]> = [
        // the magic, and no more: a copy stopped at once
        ["s4.squashfs", readFileSync(squashfs).subarray(0, 4), /^truncated: shorter than a squashfs superblock/],
        ["s47.squashfs", readFileSync(squashfs).subarray(0, 47), /^truncated: shorter than a squashfs superblock/],
        ["x6.tar.xz", whole.subarray(0, 6), /^truncated: shorter than the smallest xz stream/],
        // cut inside its first block's header, which ends in zero bytes
        ["x20.tar.xz", whole.subarray(0, 20), /^truncated: shorter than the smallest xz stream/],
        // cut, the rest of a preallocated file left as zeros
        ["xzeros.tar.xz", Buffer.concat([whole.subarray(0, 5000), Buffer.alloc(8192)]), /^truncated: an xz stream ends with its footer/],
        // zeros after the footer that are no multiple of 4: no stream padding
        ["xodd.tar.xz", Buffer.concat([whole, Buffer.alloc(3)]), /^truncated: an xz stream ends with its footer/]
      ]
      for (const [name, bytes, reason] of cases) {
        const file = join(dir, name)
        writeFileSync(file, bytes)
        expect(hashHereNow({ file, heads: [], own: true, whole: true }), name).toEqual(Either.left(expect.objectContaining({ path: file, reason: expect.stringMatching(reason) })))
        expect(yield* Effect.flip(hasher.hash({ file, heads: [], own: true, whole: true }, 0)), name).toEqual(expect.objectContaining({ path: file, reason: expect.stringMatching(reason) }))
      }
      // stream padding, 4 zero bytes at a time after the footer, is whole
      const padded = join(dir, "padded.tar.xz")
      writeFileSync(padded, Buffer.concat([whole, Buffer.alloc(8)]))
      expect(execFileSync("xz", ["-t", padded]).length).toBe(0)
      expect(Either.isRight(hashHereNow({ file: padded, heads: [], own: true, whole: true }))).toBe(true)
    }))

  it.scoped("refuses a file that is not what its name says, before hashing it, on a worker and on this thread, when asked", () =>
    Effect.gen(function* () {
      const hasher = yield* makeHasher({ workers: 1 })
      const zeros = Buffer.alloc(300_000)
      const cases = [
        ["rootfs.squashfs", /^not a squashfs \(it does not start with hsqs\)$/],
        ["disk.qcow2", /^not a qcow2 disk/],
        ["disk-kvm.img", /^not a qcow2 disk/],
        ["root.tar.xz", /^not an xz file/],
        ["image.tar.gz", /^not a gzip file/],
        ["image.tar.zst", /^not a zstd file/]
      ] as const
      for (const [name, reason] of cases) {
        const file = join(tempDir(), name)
        writeFileSync(file, zeros)
        expect(hashHereNow({ file, heads: [], own: true, whole: true }), name).toEqual(Either.left(expect.objectContaining({ path: file, reason: expect.stringMatching(reason) })))
        expect(yield* Effect.flip(hasher.hash({ file, heads: [], own: true, whole: true }, 0)), name).toEqual(expect.objectContaining({ path: file, reason: expect.stringMatching(reason) }))
        // verify asks for no such check
        expect(Either.isRight(hashHereNow({ file, heads: [], own: true })), name).toBe(true)
      }
      // a name no format is known by is hashed as it is; so is a file that starts as its name says
      const other = join(tempDir(), "notes.txt")
      writeFileSync(other, zeros)
      expect(Either.isRight(hashHereNow({ file: other, heads: [], own: true, whole: true }))).toBe(true)
      const qcow2 = join(tempDir(), "vm.qcow2")
      writeFileSync(qcow2, Buffer.concat([Buffer.from([0x51, 0x46, 0x49, 0xfb]), zeros]))
      expect(Either.isRight(hashHereNow({ file: qcow2, heads: [], own: true, whole: true }))).toBe(true)
    }))

  it.scoped("takes the workers the launcher started before the program loaded, each once, and starts its own beyond them", () =>
    Effect.gen(function* () {
      const key = Symbol.for(earlyHashWorkers.key)
      // as the launcher leaves them: started from hashWorkerBoot, waiting for their code, not holding the process
      const early = [new Worker(hashWorkerBoot, { eval: true })]
      early[0]!.unref()
      const left = [...early]
      Reflect.set(globalThis, key, left)
      yield* Effect.addFinalizer(() => Effect.sync(() => Reflect.deleteProperty(globalThis, key)))
      let answered = 0
      early[0]!.on("message", () => answered++)
      const hasher = yield* makeHasher({ workers: 2 })
      const big = join(tempDir(), "rootfs.squashfs")
      const bytes = Buffer.concat([Buffer.from("hsqs"), randomBytes(1024 * 1024)])
      writeFileSync(big, bytes)
      const results = yield* Effect.all(
        Array.from({ length: 4 }, () => hasher.hash({ file: big, heads: [p("m1")], own: true })),
        { concurrency: "unbounded" }
      )
      for (const r of results) {
        expect(r.own).toBe(createHash("sha256").update(bytes).digest("hex"))
        expect(r.combined).toEqual([createHash("sha256").update(files.m1.text).update(bytes).digest("hex")])
      }
      // taken, not left for another pool: the early thread hashed for this pool, beside one started here
      expect(left).toEqual([])
      expect(answered).toBeGreaterThan(0)
    }))
})
