/**
 * One push of the catalog to one mirror, with the host's rsync over its ssh: a snapshot of images.json and
 * index.json taken under the catalog's writer lock (so the pair agrees and the files listed are those of that
 * catalog), then the steps of MirrorPlan, one rsync each, in order; the first that fails stops the push. An
 * interrupted push kills its rsync (and so its ssh) before it returns. A lock per mirror in the state folder keeps
 * `watch` and `mirror push` from pushing to one mirror at once (`exclusive`), and another, held for a moment,
 * keeps their changes to the mirror's state file from crossing (`update`).
 */
import { Command, CommandExecutor, FileSystem, Path } from "@effect/platform"
import { Data, Effect, Option, Schema, Stream } from "effect"
import { writeFileAtomic } from "../indexer/AtomicFile.js"
import { indexedProducts, indexOf } from "../indexer/CatalogText.js"
import { acquireWriterLock, WriterLock } from "../indexer/WriterLock.js"
import { pageFileName } from "../page/PageWriter.js"
import { canonicalJson, Images } from "../simplestreams/Streams.js"
import type { MirrorTarget } from "./MirrorConfig.js"
import { catalogFiles, closeControlArgs, leavingProducts, protectRules, type PushSources, pushSteps } from "./MirrorPlan.js"
import type { MirrorDriver } from "./MirrorQueue.js"
import { type MirrorState, parseState, stateText } from "./MirrorState.js"

export class MirrorPushError extends Data.TaggedError("MirrorPushError")<{
  readonly mirror: string
  readonly step: string
  readonly reason: string
}> {
  override get message() {
    return `mirror ${this.mirror}: ${this.step}: ${this.reason}`
  }
}

/** Where the primary's catalog is. */
export interface PushContext {
  readonly streamsDir: string
  /** The images folder relative to the web root, as item paths begin (Indexer.imagesPathFor). */
  readonly imagesPath: string
  readonly stateDir: string
}

/** The last lines rsync and ssh wrote, which say what went wrong, on one line. */
const lastWords = (stderr: string) =>
  stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !/^rsync error: .*\(code \d+\) at /.test(l))
    .slice(-2)
    .join("; ")

export class MirrorPush extends Effect.Service<MirrorPush>()("lxd-image-server/MirrorPush", {
  effect: Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const lock = yield* WriterLock
    const context = yield* Effect.context<FileSystem.FileSystem | Path.Path | CommandExecutor.CommandExecutor>()

    const mirrorDir = (stateDir: string, name: string) => path.join(stateDir, "mirrors", name)
    const statePath = (stateDir: string, name: string) => path.join(stateDir, "mirrors", `${name}.json`)

    const readState = (stateDir: string, name: string) =>
      fs.readFileString(statePath(stateDir, name)).pipe(
        Effect.option,
        Effect.map((text) => parseState(text._tag === "Some" ? text.value : undefined))
      )

    /**
     * Changes the mirror's state as the file holds it now, under the state's own lock (held for a read and a
     * write), and answers the new state. Written whole or not at all: `mirror status` reads it at any moment. A
     * failed write is only a stale status: said, and the change is still answered.
     */
    const update = (stateDir: string, name: string, change: (s: MirrorState) => MirrorState) =>
      Effect.gen(function* () {
        yield* acquireWriterLock(path.join(mirrorDir(stateDir, name), "state", "v1"))
        const text = yield* fs.readFileString(statePath(stateDir, name)).pipe(Effect.option)
        const before = text._tag === "Some" ? text.value : undefined
        const after = change(parseState(before))
        const written = stateText(after)
        if (written !== before) yield* writeFileAtomic(statePath(stateDir, name), written)
        return after
      }).pipe(
        Effect.scoped,
        Effect.catchAll((e) =>
          Effect.logWarning(`mirror ${name}: cannot keep its state in ${stateDir}: ${e.message}`).pipe(
            Effect.zipRight(Effect.map(readState(stateDir, name), change))
          )
        ),
        Effect.provide(context)
      )

    /** Runs `effect` holding the mirror: one push at a time to it, across processes; a waiter says whom it waits for. */
    const exclusive =
      (stateDir: string, name: string) =>
      <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E | MirrorPushError> =>
        Effect.scoped(
          Effect.zipRight(
            acquireWriterLock(path.join(mirrorDir(stateDir, name), "lock", "v1"), {
              onWait: (holder) => Effect.logInfo(`mirror ${name}: waiting for ${holder === undefined ? "another process" : `process ${holder}`}, which is pushing to it`)
            }).pipe(Effect.mapError((e) => new MirrorPushError({ mirror: name, step: "lock", reason: e.message }))),
            effect
          )
        ).pipe(Effect.provide(context))

    const rsync = (m: MirrorTarget, what: string, args: ReadonlyArray<string>) =>
      Effect.scoped(
        Effect.gen(function* () {
          const child = yield* Command.start(Command.make("rsync", ...args))
          const [stderr, , code] = yield* Effect.all(
            [
              child.stderr.pipe(Stream.decodeText(), Stream.runFold("", (all, s) => (all + s).slice(-8_000))),
              Stream.runDrain(child.stdout),
              child.exitCode
            ],
            { concurrency: "unbounded" }
          )
          if (code !== 0) return yield* new MirrorPushError({ mirror: m.name, step: what, reason: `${lastWords(stderr) || "no message"} (rsync exit ${code})` })
        })
      ).pipe(
        Effect.catchTag("SystemError", "BadArgument", (e) =>
          Effect.fail(new MirrorPushError({ mirror: m.name, step: what, reason: `cannot run rsync: ${e.message}` }))
        )
      )

    /**
     * Pushes the catalog as it is now; the caller holds the mirror (`exclusive`). `indexBefore` names the products
     * of the index the mirror serves (from the last push), so that those leaving are taken out of it first.
     * Returns the products of the index pushed.
     */
    const push = (m: MirrorTarget, ctx: PushContext, indexBefore: ReadonlyArray<string> | null) =>
      Effect.gen(function* () {
        const fail = (step: string, reason: string) => new MirrorPushError({ mirror: m.name, step, reason })
        const streamsDir = path.resolve(ctx.streamsDir)
        const webRoot = path.dirname(path.dirname(streamsDir))
        const streamsPath = path.relative(webRoot, streamsDir)
        const work = mirrorDir(ctx.stateDir, m.name)
        const snapshotRoot = path.join(work, "snapshot")
        const narrowedRoot = path.join(work, "narrowed")
        yield* fs.makeDirectory(path.join(snapshotRoot, streamsPath), { recursive: true }).pipe(Effect.mapError((e) => fail("snapshot", e.message)))

        // the pair as one writer left it: images.json and index.json agree, and the files are that catalog's
        const [imagesBytes, indexBytes] = yield* Effect.all([
          fs.readFile(path.join(streamsDir, "images.json")),
          fs.readFile(path.join(streamsDir, "index.json"))
        ]).pipe(
          lock.withLock(streamsDir),
          Effect.mapError((e) => fail("snapshot", e._tag === "SystemError" && e.reason === "NotFound" ? `no catalog in ${streamsDir} yet` : e.message))
        )
        // the catalog page, when the primary writes one: it goes with images.json
        const pageBytes = yield* fs.readFile(path.join(webRoot, pageFileName)).pipe(Effect.option)
        const images = yield* Schema.decodeUnknown(Schema.parseJson(Images))(Buffer.from(imagesBytes).toString("utf8")).pipe(
          Effect.mapError(() => fail("snapshot", `${path.join(streamsDir, "images.json")} is not a catalog`))
        )
        const files = catalogFiles(images)
        const products = indexedProducts(indexBytes)
        const leaving = leavingProducts(indexBefore ?? [], products)
        const filesList = path.join(work, "files")
        const protectFile = path.join(work, "protect")
        yield* Effect.all([
          writeFileAtomic(path.join(snapshotRoot, streamsPath, "images.json"), imagesBytes),
          writeFileAtomic(path.join(snapshotRoot, streamsPath, "index.json"), indexBytes),
          Option.match(pageBytes, { onNone: () => Effect.void, onSome: (bytes) => writeFileAtomic(path.join(snapshotRoot, pageFileName), bytes) }),
          writeFileAtomic(filesList, files.map((f) => `${f}\0`).join("")),
          writeFileAtomic(protectFile, protectRules(files, ctx.imagesPath)),
          leaving.length === 0
            ? Effect.void
            : fs.makeDirectory(path.join(narrowedRoot, streamsPath), { recursive: true }).pipe(
                Effect.zipRight(
                  writeFileAtomic(
                    path.join(narrowedRoot, streamsPath, "index.json"),
                    canonicalJson(indexOf((indexBefore ?? []).filter((p) => !leaving.includes(p) && products.includes(p))))
                  )
                )
              )
        ]).pipe(Effect.mapError((e) => fail("snapshot", e.message)), Effect.provide(context))

        // short: a unix socket's path has room for about 100 bytes
        const socket = path.join(ctx.stateDir, "mirrors", `${m.name}.ssh`)
        const controlPath = socket.length < 100 ? socket : undefined
        // the shared connection ends with the push, not 60 s later (bounded: a stop must not wait on a dead host)
        if (controlPath !== undefined) {
          yield* Effect.addFinalizer(() =>
            Command.exitCode(Command.make("ssh", ...closeControlArgs(m, controlPath)).pipe(Command.stderr("pipe"), Command.stdout("pipe"))).pipe(
              Effect.timeout("2 seconds"),
              Effect.ignore
            )
          )
        }
        const sources: PushSources = {
          webRoot,
          imagesPath: ctx.imagesPath,
          streamsPath,
          snapshotRoot,
          narrowedIndexRoot: leaving.length === 0 ? undefined : narrowedRoot,
          filesList,
          protectFile,
          controlPath,
          page: Option.isSome(pageBytes)
        }
        for (const step of pushSteps(m, sources)) {
          yield* Effect.logDebug(`mirror ${m.name}: ${step.what}`)
          yield* rsync(m, step.what, step.args)
        }
        return products
      }).pipe(Effect.scoped, Effect.provide(context))

    /** What a mirror's pusher (`pushOnce`) needs, for this mirror and this primary. */
    const driver = (m: MirrorTarget, ctx: PushContext): MirrorDriver => ({
      update: (change) => update(ctx.stateDir, m.name, change),
      exclusive: exclusive(ctx.stateDir, m.name),
      push: (indexBefore) => push(m, ctx, indexBefore)
    })

    return { push, readState, update, exclusive, driver } as const
  })
}) {}
