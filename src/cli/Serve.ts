/** `serve`: the one-command server. The watch service and an HTTPS static server over the same root, in one process. */
import { Command, Options } from "@effect/cli"
import { FileSystem, Path } from "@effect/platform"
import { Console, Duration, Effect, Layer, Option, Queue } from "effect"
import { writableStateDir } from "../config/StateDir.js"
import { HttpsServerLive, staticApp } from "../server/HttpServe.js"
import { behindSecret, privateOptions, resolvePrivate, serverInstructions } from "./Private.js"
import { ensureCertificate } from "../server/Tls.js"
import { serveUrl } from "../server/ServeUrl.js"
import { pageSite } from "../page/PageWriter.js"
import { watchRetention } from "./Watch.js"
import { syncTargets } from "../sync/SyncConfig.js"
import { mirrorTargets } from "../mirror/MirrorConfig.js"
import { hangups, holdPidfile } from "../watch/Pidfile.js"
import { WatchService } from "../watch/WatchService.js"
import { defaults, serveDefaults, setting } from "../config/Settings.js"
import { LoadedConfig } from "./Global.js"
import { resolveServerOptions, serverOptions } from "./Init.js"
import { resolveStaleAfter, staleAfterOption } from "./Status.js"
import { HealthLive } from "../Layers.js"
import { Metrics } from "../health/Metrics.js"
import { feedMetrics } from "../health/MetricsFeed.js"
import { ServiceBoard } from "../health/ServiceBoard.js"
import { heldToKey } from "./HeldToKey.js"


const serveOptions = {
  ...serverOptions,
  host: Options.text("host").pipe(Options.withDescription(`The address to listen on (default ${defaults.host}; config key host)`), Options.optional),
  port: Options.integer("port").pipe(heldToKey("port", "port"), Options.withDescription(`The HTTPS port (default ${serveDefaults.port}; config key port)`), Options.optional),
  staleAfter: staleAfterOption,
  ...privateOptions
}

export const serve = Command.make("serve", serveOptions, (flags) =>
  Effect.scoped(
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const service = yield* WatchService
      const { file } = yield* LoadedConfig
      const staleAfterMs = yield* resolveStaleAfter(flags.staleAfter)
      const server = yield* resolveServerOptions(flags)
      // bad secrets stop serve before it makes or opens anything else
      const secret = yield* resolvePrivate(flags)
        const rootDir = path.resolve(server.rootDir)
      const host = setting(file, "host", flags.host)
      const port = setting(file, "port", flags.port, serveDefaults.port)
      const imagesDir = path.join(rootDir, "images")
      const streamsDir = path.join(rootDir, "streams", "v1")
      for (const dir of [imagesDir, streamsDir]) yield* fs.makeDirectory(dir, { recursive: true, mode: 0o755 })
      const cert = yield* ensureCertificate(server.sslDir, server.hostnames)
      if (cert.created) yield* Effect.logInfo(`made a self-signed certificate ${cert.cert}`)
      const stateDir = yield* writableStateDir(setting(file, "state_dir"))
      yield* holdPidfile(setting(file, "pidfile", Option.none(), serveDefaults.pidfile), stateDir)
      // `reload` or a stray SIGHUP must not kill the server; serve reads its config at start only
      const hups = yield* hangups
      yield* Queue.take(hups).pipe(
        Effect.zipRight(Effect.logWarning("SIGHUP: serve reads its config at start only; restart it to apply changes")),
        Effect.forever,
        Effect.forkScoped
      )
      const url = serveUrl(server.hostnames, host, port)
      const compat = setting(file, "compat")
      // the health endpoints and the metrics, fed from this run's generations and the service's reports
      const metrics = yield* Metrics
      // the config's push mirrors get every generation, as under watch
      const mirrors = mirrorTargets(file.mirrors, stateDir)
      const feed = yield* feedMetrics(() => ({ streamsDir, stateDir, mirrors, staleAfterMs }))
      yield* metrics.exposeHttp
      const health = { ready: feed.ready, metrics: feed.render, metricsContentType: feed.contentType, countResponse: metrics.countResponse }
      // a private server's files are behind the gate; whatever needs no secret goes beside it, not behind
      const app = yield* behindSecret(secret, staticApp(rootDir))
      // listening for the scope's life, before it says where it serves: a port in use is one line, no address
      yield* Layer.build(HttpsServerLive({ rootDir, host, port, cert: cert.cert, key: cert.key, health }, app))
      yield* Console.log([`serving ${rootDir} at ${url}`, ...serverInstructions(url, yield* fs.readFileString(cert.cert), cert.cert, secret, port)].join("\n"))
      yield* service.run({
        imagesDir,
        streamsDir,
        compat,
        page: yield* pageSite({ publicUrl: setting(file, "public_url"), hostnames: server.hostnames, port, sslDir: server.sslDir, compat, private: secret }),
        stateDir,
        settle: Duration.seconds(setting(file, "settle")),
        reconcileEvery: Duration.seconds(setting(file, "reconcile_interval")),
        retention: watchRetention(file),
        mirrors,
        syncs: syncTargets(file.sync),
        report: (yield* ServiceBoard).report
      })
    })
  ).pipe(Effect.provide(HealthLive))
).pipe(Command.withDescription(`Serve the root over HTTPS (default port ${serveDefaults.port}) and keep its catalog true: one command, no nginx; /healthz, /readyz and /metrics answer without any secret`))
