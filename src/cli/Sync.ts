/**
 * `sync URL`: copies an upstream simplestreams server into the images tree (Syncer), then publishes what it
 * placed as `add` does: under the writer lock, or, when `watch` (or `serve`) runs, left to it, since it sees the
 * new version folders appear and publishes them without reading the rest of the tree again.
 */
import { Args, Command, Options } from "@effect/cli"
import { FileSystem, Path } from "@effect/platform"
import { Effect, Either, Option } from "effect"
import { readableStateDir, writableStateDir } from "../config/StateDir.js"
import { defaults, serveDefaults, setting } from "../config/Settings.js"
import { Indexer } from "../indexer/Indexer.js"
import { holderOf } from "../indexer/WriterLock.js"
import { versionDir } from "../tree/Layout.js"
import { checkUpstreamUrl } from "../sync/SyncConfig.js"
import { parseFilters } from "../sync/SyncFilter.js"
import { mib, outcomeLine, Syncer } from "../sync/Syncer.js"
import { displayUrl } from "../sync/Upstream.js"
import { trustFrom } from "../sync/UpstreamHttp.js"
import { UsageError } from "./Failure.js"
import { LoadedConfig } from "./Global.js"
import { lifecycleOptions, resolveFolders } from "./Update.js"

/** The pid of a live `watch` or `serve` on this host (by their pidfiles, or those they fall back to), if any. */
const runningService = (pidfiles: ReadonlyArray<string>, stateDir: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    for (const file of new Set(pidfiles.flatMap((p) => [p, path.join(stateDir, path.basename(p))]))) {
      const pid = yield* holderOf(fs, file)
      if (pid !== undefined) return pid
    }
    return undefined
  })

export const sync = Command.make(
  "sync",
  {
    ...lifecycleOptions,
    url: Args.text({ name: "URL" }).pipe(Args.withDescription("The upstream server, as clients add it: https://host[/path] (the folder holding streams/)")),
    cert: Options.file("cert", { exists: "yes" }).pipe(
      Options.withDescription("The upstream's certificate, or its CA, in PEM (default: the system's certificate authorities)"),
      Options.optional
    ),
    filter: Options.text("filter").pipe(
      Options.withDescription("Copy only images with KEY=VALUE: os, release, arch, variant or type (container|virtual-machine); repeatable: a key given twice matches either"),
      Options.repeated,
      // zero or more: a default shows it in brackets in the usage line
      Options.withDefault([])
    ),
    keep: Options.integer("keep").pipe(Options.withDescription("Copy only the newest N versions of each product"), Options.optional),
    dryRun: Options.boolean("dry-run").pipe(Options.withDescription("Say what would be fetched; fetch nothing"))
  },
  (flags) =>
    Effect.gen(function* () {
      const { file } = yield* LoadedConfig
      const syncer = yield* Syncer
      const path = yield* Path.Path
      const badUrl = checkUpstreamUrl(flags.url)
      if (badUrl !== undefined) return yield* new UsageError({ reason: `sync: ${badUrl}` })
      const keep = Option.getOrUndefined(flags.keep)
      if (keep !== undefined && keep < 1) return yield* new UsageError({ reason: `sync: --keep ${keep}: keep at least 1 version` })
      const filters = yield* Either.match(parseFilters(flags.filter), { onLeft: (reason) => new UsageError({ reason: `sync: ${reason}` }), onRight: Effect.succeed })
      const certFile = Option.getOrUndefined(flags.cert)
      if (certFile !== undefined && flags.url.startsWith("http:")) return yield* new UsageError({ reason: "sync: --cert is for an https:// URL" })
      const trust = yield* trustFrom(certFile).pipe(Effect.mapError((e) => new UsageError({ reason: `sync: --cert ${e.message}` })))
      const folders = yield* resolveFolders(flags)
      const stateDir = yield* writableStateDir(setting(file, "state_dir", flags.stateDir))
      const started = Date.now()

      const outcome = yield* syncer.run(
        { url: flags.url, trust, filters, keep },
        { imagesDir: folders.imagesDir, streamsDir: folders.streamsDir, stateDir },
        { dryRun: flags.dryRun }
      )
      if (flags.dryRun) {
        const lines = outcome.work.map(
          (w) =>
            `would fetch ${w.version.product} ${w.version.version} into ${path.join(folders.imagesDir, versionDir(w.version.ref))}: ` +
            `${w.fetch.map((f) => f.name).join(", ")} (${mib(w.fetch.reduce((n, f) => n + f.size, 0))}; ${w.images.map((i) => `${i.type} ${i.fingerprint.slice(0, 12)}`).join(", ")})`
        )
        yield* Effect.sync(() => process.stdout.write(lines.length === 0 ? "nothing to fetch\n" : `${lines.join("\n")}\n`))
      } else {
        yield* Effect.logInfo(outcomeLine(flags.url, outcome, Date.now() - started))
        if (outcome.unpublished.length > 0) yield* Effect.logInfo(`sync: ${outcome.unpublished.length} of the versions here already are not in the catalog (a sync stopped before publishing them?): published with the rest`)
        if (outcome.placed.length > 0 || outcome.unpublished.length > 0) {
          const service = yield* runningService([setting(file, "pidfile"), serveDefaults.pidfile, defaults.pidfile], stateDir)
          if (service !== undefined) yield* Effect.logInfo(`the running service (process ${service}) publishes them`)
          else yield* (yield* Indexer).rebuild(folders, yield* readableStateDir(setting(file, "state_dir", flags.stateDir)))
        }
      }
      if (outcome.failures.length > 0) {
        return yield* Effect.fail(new Error(`sync ${displayUrl(flags.url)}: ${outcome.failures.length === 1 ? "1 failure" : `${outcome.failures.length} failures`} (each said above); the rest ${flags.dryRun ? "would be" : "was"} copied`))
      }
    })
).pipe(Command.withDescription("Copy an upstream simplestreams server (or what the filters pick of it) into the images tree, and publish it"))
