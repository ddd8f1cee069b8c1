/**
 * The metrics as rendered by prom-client, read back with a real Prometheus text-format parser: what each
 * input sets, the publish latency histogram from a generation's `since`, bounded labels. And the publisher's
 * `settledSince`, which the catalog's lag is measured from.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Metrics, metricPrefix } from "../../src/health/Metrics.js"
import { readiness, type ServiceReport } from "../../src/health/Readiness.js"
import { refusalKinds } from "../../src/health/RefusalKind.js"
import type { HashedVersion } from "../../src/indexer/Catalog.js"
import { Publisher } from "../../src/publish/Publisher.js"
import { refusal } from "../../src/tree/Layout.js"
import { family, parseMetrics, sampleValue } from "../support/Metrics.js"

const m = (name: string) => `${metricPrefix}${name}`
const now = 1_714_560_000_000
const version = {} as HashedVersion

const report: ServiceReport = {
  at: now,
  reconciled: true,
  status: {
    generation: 5,
    committedAt: now - 2000,
    versions: 4,
    products: 2,
    refused: [
      refusal("a/b/amd64/default/1/rootfs.squashfs", "not listed in SHA256SUMS"),
      refusal("a/b/amd64/default/2", "the same image as a/b/amd64/default/1 (fingerprint 0123)"),
      refusal("a/b/amd64/default/3", "the same image as a/b/amd64/default/1 (fingerprint 0123)")
    ],
    settling: 1,
    settledSince: now - 30_000,
    writeTrouble: undefined
  }
}

describe("metrics", () => {
  it.effect("render what the service reported, the generations and the mirrors, in a text format Prometheus parses", () =>
    Effect.gen(function* () {
      const metrics = yield* Metrics
      yield* metrics.observeGeneration({
        number: 5,
        at: now - 2000,
        added: [
          { key: "a/b/amd64/default/1", version, since: now - 2000 - 3500 },
          { key: "a/b/amd64/default/4", version, since: now - 2000 - 45_000 },
          // published at start, by a reconcile: no event, no latency
          { key: "a/b/amd64/default/5", version, since: undefined }
        ],
        withdrawn: []
      })
      yield* metrics.observeReport(report, readiness(report, true, now, 900_000), now)
      yield* metrics.observeMirrors([
        { name: "eu1", state: "in-sync", generation: 5, lag_generations: 0, lag_seconds: 0, last_error: null },
        { name: "us1", state: "failing", generation: 3, lag_generations: 2, lag_seconds: 75, last_error: "ssh: connection refused" }
      ])
      const families = parseMetrics(yield* metrics.render)
      expect(sampleValue(families, m("generation"))).toBe(5)
      expect(sampleValue(families, m("last_publish_timestamp_seconds"))).toBe((now - 2000) / 1000)
      expect(sampleValue(families, m("versions"))).toBe(4)
      expect(sampleValue(families, m("products"))).toBe(2)
      expect(sampleValue(families, m("settling_versions"))).toBe(1)
      expect(sampleValue(families, m("catalog_lag_seconds"))).toBe(30)
      expect(sampleValue(families, m("ready"))).toBe(1)
      const refused = family(families, m("refused_versions"))
      expect(refused.type).toBe("GAUGE")
      // every kind is there, 0 or not: a known, small set of label values
      expect(refused.metrics.map((s) => s.labels?.["reason"]).sort()).toEqual([...refusalKinds].sort())
      expect(sampleValue(families, m("refused_versions"), { reason: "duplicate" })).toBe(2)
      expect(sampleValue(families, m("refused_versions"), { reason: "checksum" })).toBe(1)
      const latency = family(families, m("publish_latency_seconds"))
      expect(latency.type).toBe("HISTOGRAM")
      expect(latency.metrics[0]).toMatchObject({ count: "2", sum: "48.5", buckets: { "2": "0", "5": "1", "30": "1", "60": "2", "+Inf": "2" } })
      expect(sampleValue(families, m("mirror_lag_generations"), { mirror: "us1" })).toBe(2)
      expect(sampleValue(families, m("mirror_lag_seconds"), { mirror: "us1" })).toBe(75)
      expect(sampleValue(families, m("mirror_failing"), { mirror: "us1" })).toBe(1)
      expect(sampleValue(families, m("mirror_generation"), { mirror: "eu1" })).toBe(5)
      // no HTTP server, no HTTP metrics (watch's textfile)
      expect(families.some((f) => f.name.includes("http"))).toBe(false)

      // a mirror no longer configured leaves; HTTP counters appear once exposed
      yield* metrics.observeMirrors([])
      yield* metrics.exposeHttp
      metrics.countResponse(200, 1000)
      metrics.countResponse(200, 24)
      metrics.countResponse(404, 10)
      metrics.countResponse(206, 0)
      const after = parseMetrics(yield* metrics.render)
      expect(after.find((f) => f.name === m("mirror_lag_seconds"))?.metrics ?? []).toEqual([])
      expect(sampleValue(after, m("http_requests_total"), { code: "200" })).toBe(2)
      expect(sampleValue(after, m("http_requests_total"), { code: "206" })).toBe(1)
      expect(sampleValue(after, m("http_response_bytes_total"), { code: "200" })).toBe(1024)
      expect(family(after, m("http_requests_total")).type).toBe("COUNTER")
    }).pipe(Effect.provide(Metrics.Default))
  )

  it.effect("say not ready, and the write failures, while writes fail", () =>
    Effect.gen(function* () {
      const metrics = yield* Metrics
      const failing: ServiceReport = { ...report, status: { ...report.status, writeTrouble: { since: now - 9000, failures: 4, reason: "EIO", retryAt: now + 1000 } } }
      yield* metrics.observeReport(failing, readiness(failing, true, now, 900_000), now)
      const families = parseMetrics(yield* metrics.render)
      expect(sampleValue(families, m("ready"))).toBe(0)
      expect(sampleValue(families, m("catalog_write_failures"))).toBe(4)
    }).pipe(Effect.provide(Metrics.Default))
  )
})

describe("the publisher's settledSince", () => {
  it("is when the longest-waiting version settled, and none once nothing waits", () => {
    const p = new Publisher({ compat: "lxd", imagesPath: "images", settleMs: 2000 })
    expect(p.status().settledSince).toBeUndefined()
    p.touched("a/b/amd64/default/1", 10_000)
    p.touched("a/b/amd64/default/2", 11_000)
    p.touched("a/b/amd64/default/1", 12_000)
    expect(p.status().settledSince).toBe(13_000)
  })
})
