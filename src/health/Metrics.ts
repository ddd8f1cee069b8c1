/**
 * The service's metrics, kept by prom-client (the Prometheus client for Node) in a registry of their own, and
 * rendered in the Prometheus text format: `serve`'s `/metrics` and `watch`'s node-exporter textfile. Fed with
 * values (a generation, the service's report, the mirrors' statuses, an HTTP response); it reads nothing itself.
 * Every label takes values from a small known set: refusal kinds, HTTP status codes, configured mirror names.
 */
import { Effect } from "effect"
import type { MirrorStatus } from "../mirror/MirrorState.js"
import type { Generation } from "../publish/Publisher.js"
import { catalogLagMs, type Readiness, type ServiceReport } from "./Readiness.js"
import { refusalKind, refusalKinds } from "./RefusalKind.js"

export const metricPrefix = "lxd_image_server_"

/** From a version's first file event to the generation that published it: a settle window to an hour. */
export const publishLatencyBuckets = [1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600]

export class Metrics extends Effect.Service<Metrics>()("lxd-image-server/Metrics", {
  effect: Effect.gen(function* () {
    // loaded by serve and watch only: the other commands start without it (about 30 ms of CPU)
    const { Counter, Gauge, Histogram, Registry } = yield* Effect.promise(() => import("prom-client"))
    const registry = new Registry()
    const gauge = (name: string, help: string, labelNames: ReadonlyArray<string> = []) =>
      new Gauge({ name: `${metricPrefix}${name}`, help, labelNames, registers: [registry] })
    const generation = gauge("generation", "The generation of the catalog: it counts the commits that changed the catalog's versions")
    const lastPublish = gauge("last_publish_timestamp_seconds", "When the current generation was committed (Unix time)")
    const latency = new Histogram({
      name: `${metricPrefix}publish_latency_seconds`,
      help: "Time from a version's first file event to the generation that published it",
      buckets: publishLatencyBuckets,
      registers: [registry]
    })
    const versions = gauge("versions", "Versions the catalog lists")
    const products = gauge("products", "Products the catalog lists")
    const refused = gauge("refused_versions", "Paths of the images folder refused now, by kind of reason", ["reason"])
    const settling = gauge("settling_versions", "Versions changed and not yet published: uploads settling or being hashed")
    const lag = gauge("catalog_lag_seconds", "How long the longest-waiting settled version has waited to be published (0: none waits)")
    const writeFailures = gauge("catalog_write_failures", "Failed catalog writes in a row (0: the last write worked)")
    const ready = gauge("ready", "1 when the catalog is written and current (the rule of /readyz), else 0")
    const mirrorGeneration = gauge("mirror_generation", "The generation a mirror serves (-1: none pushed yet)", ["mirror"])
    const mirrorLagGenerations = gauge("mirror_lag_generations", "Generations a mirror is behind the primary", ["mirror"])
    const mirrorLagSeconds = gauge("mirror_lag_seconds", "Seconds since the oldest generation a mirror lacks was committed (0: in sync)", ["mirror"])
    const mirrorFailing = gauge("mirror_failing", "1 while pushes to a mirror fail, else 0", ["mirror"])
    // only `serve` answers HTTP: registered by it, so that `watch`'s textfile has no requests that never were
    const requests = new Counter({ name: `${metricPrefix}http_requests_total`, help: "HTTP requests answered, by status code", labelNames: ["code"], registers: [] })
    const sent = new Counter({
      name: `${metricPrefix}http_response_bytes_total`,
      help: "Bytes of response bodies sent, by status code (a download cut short counts what was sent)",
      labelNames: ["code"],
      registers: []
    })
    let httpExposed = false

    return {
      /** A generation committed: the generation, its time, and each version's time to publish. */
      observeGeneration: (g: Generation) =>
        Effect.sync(() => {
          generation.set(g.number)
          lastPublish.set(g.at / 1000)
          for (const a of g.added) if (a.since !== undefined) latency.observe(Math.max(0, (g.at - a.since) / 1000))
        }),
      /** The service's last report, and the readiness the rule gives now. */
      observeReport: (report: ServiceReport | undefined, readiness: Readiness, now: number) =>
        Effect.sync(() => {
          ready.set(readiness.ready ? 1 : 0)
          if (report === undefined) return
          const s = report.status
          generation.set(s.generation)
          if (s.committedAt !== undefined) lastPublish.set(s.committedAt / 1000)
          versions.set(s.versions)
          products.set(s.products)
          settling.set(s.settling)
          lag.set(catalogLagMs(s, now) / 1000)
          writeFailures.set(s.writeTrouble?.failures ?? 0)
          const counts = new Map(refusalKinds.map((k) => [k, 0]))
          for (const r of s.refused) counts.set(refusalKind(r), (counts.get(refusalKind(r)) ?? 0) + 1)
          for (const [reason, n] of counts) refused.set({ reason }, n)
        }),
      /** The configured mirrors now; one no longer configured leaves the metrics. */
      observeMirrors: (rows: ReadonlyArray<MirrorStatus>) =>
        Effect.sync(() => {
          for (const g of [mirrorGeneration, mirrorLagGenerations, mirrorLagSeconds, mirrorFailing]) g.reset()
          for (const r of rows) {
            const mirror = { mirror: r.name }
            mirrorGeneration.set(mirror, r.generation ?? -1)
            mirrorLagGenerations.set(mirror, r.lag_generations)
            mirrorLagSeconds.set(mirror, r.lag_seconds)
            mirrorFailing.set(mirror, r.state === "failing" ? 1 : 0)
          }
        }),
      /** Adds the HTTP counters to what is rendered (once; `serve` does). */
      exposeHttp: Effect.sync(() => {
        if (httpExposed) return
        httpExposed = true
        registry.registerMetric(requests)
        registry.registerMetric(sent)
      }),
      /** A response, as it ends: its status and the bytes of body sent. Synchronous: called from the server's events. */
      countResponse: (status: number, bytes: number) => {
        const code = String(status)
        requests.inc({ code })
        if (bytes > 0) sent.inc({ code }, bytes)
      },
      render: Effect.promise(() => registry.metrics()),
      contentType: registry.contentType as string
    } as const
  })
}) {}
