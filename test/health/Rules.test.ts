/** The health rules, pure: readiness (`/readyz`), and what `status` reports and exits with. */
import { describe, expect, it } from "@effect/vitest"
import { readiness, type ServiceReport } from "../../src/health/Readiness.js"
import type { StatusFile } from "../../src/health/StatusFile.js"
import { catalogFigures } from "../../src/health/StatusProbe.js"
import { type StatusInputs, statusExitCode, statusExitCodes, statusReport, statusText } from "../../src/health/StatusReport.js"
import type { PublisherStatus } from "../../src/publish/Publisher.js"

const now = Date.UTC(2024, 4, 1, 12, 0, 0)
const status = (s: Partial<PublisherStatus> = {}): PublisherStatus => ({
  generation: 4,
  committedAt: now - 60_000,
  versions: 3,
  products: 2,
  refused: [],
  settling: 0,
  settledSince: undefined,
  writeTrouble: undefined,
  ...s
})
const report = (s: Partial<PublisherStatus> = {}, reconciled = true): ServiceReport => ({ at: now, status: status(s), reconciled })

describe("readiness", () => {
  const staleAfter = 900_000
  it("is 503 before the service's first report and before its first reconcile of this run", () => {
    expect(readiness(undefined, true, now, staleAfter).ready).toBe(false)
    expect(readiness(report({}, false), true, now, staleAfter)).toMatchObject({ ready: false, reason: expect.stringContaining("starting") })
  })
  it("is 200 once the catalog is written and nothing waits too long", () => {
    expect(readiness(report(), true, now, staleAfter)).toEqual({ ready: true, reason: "ready: generation 4, 3 versions" })
    // a version settling for a while is no lag yet
    expect(readiness(report({ settling: 1, settledSince: now - staleAfter }), true, now, staleAfter).ready).toBe(true)
  })
  it("is 503 when images.json is gone, while writes fail, and when a settled version waits past the threshold", () => {
    expect(readiness(report(), false, now, staleAfter)).toMatchObject({ ready: false, reason: "images.json is missing" })
    const trouble = { since: now - 5000, failures: 3, reason: "ENOSPC: no space left on device", retryAt: now + 4000 }
    expect(readiness(report({ writeTrouble: trouble }), true, now, staleAfter)).toMatchObject({ ready: false, reason: expect.stringContaining("ENOSPC") })
    expect(readiness(report({ settling: 1, settledSince: now - staleAfter - 1000 }), true, now, staleAfter)).toMatchObject({
      ready: false,
      reason: expect.stringContaining("the catalog lags")
    })
  })
})

const statusFile = (s: Partial<StatusFile> = {}): StatusFile => ({
  pid: 42,
  generation: 7,
  committed_at: new Date(now - 120_000).toISOString(),
  products: 1,
  versions: 2,
  refused: [],
  settling: 0,
  write_error: null,
  ...s
})

const inputs = (i: Partial<StatusInputs> = {}): StatusInputs => ({
  now,
  staleAfterMs: 900_000,
  settleMs: 2000,
  graceMs: 6 * 3_600_000,
  service: { pid: 42, pidfile: "/run/x.pid", looked: ["/run/x.pid"] },
  statusFile: statusFile(),
  catalog: { writtenAt: now - 120_000, products: 1, versions: 2, bytes: 3 * 1024 * 1024, listed: new Set(["d/b/amd64/default/1", "d/b/amd64/default/2"]) },
  versions: [
    { key: "d/b/amd64/default/1", changedAt: now - 86_400_000 },
    { key: "d/b/amd64/default/2", changedAt: now - 3_600_000 }
  ],
  treeRefusals: [],
  treeProblem: undefined,
  staging: [],
  withdrawals: [],
  mirrors: [],
  ...i
})

describe("status", () => {
  it("is current and exits 0 when the service runs and the catalog lists every settled upload", () => {
    const r = statusReport(inputs())
    expect(r).toMatchObject({ format_version: 1, generation: 7, products: 1, versions: 2, bytes: 3 * 1024 * 1024, current: true, age_seconds: 120, problems: [] })
    expect(r.service).toEqual({ running: true, pid: 42, pidfile: "/run/x.pid" })
    expect(statusExitCode(r)).toBe(statusExitCodes.ok)
    expect(statusText(r, now)).toContain("generation 7, written 2024-05-01T11:58:00.000Z (2 min ago): 1 products, 2 versions, 3.00 MiB")
  })

  it("exits 1 when no pidfile names a live process, whatever the catalog", () => {
    const r = statusReport(inputs({ service: { pid: undefined, pidfile: undefined, looked: ["/run/a.pid", "/run/b.pid"] } }))
    expect(r.service.running).toBe(false)
    expect(r.problems[0]).toBe("the service is not running: no live process in /run/a.pid or /run/b.pid")
    expect(statusExitCode(r)).toBe(statusExitCodes.notRunning)
  })

  it("lists uploads settling and waiting, and calls the catalog stale once a settled one waits past the threshold", () => {
    const versions = [
      { key: "d/b/amd64/default/3", changedAt: now - 1000 },
      { key: "d/b/amd64/default/4", changedAt: now - 60_000 }
    ]
    const fresh = statusReport(inputs({ versions, staging: [{ path: "d/b/amd64/default/.5", changedAt: now - 10_000 }] }))
    expect(fresh.uploads.map((u) => [u.path, u.state])).toEqual([
      ["d/b/amd64/default/.5", "staging"],
      ["d/b/amd64/default/3", "settling"],
      ["d/b/amd64/default/4", "waiting"]
    ])
    expect(fresh.current).toBe(true)
    const late = statusReport(inputs({ versions, staleAfterMs: 30_000 }))
    expect(late.current).toBe(false)
    expect(late.problems).toEqual(["the catalog is stale: 1 settled upload(s) not published, d/b/amd64/default/4 for 58 s (threshold 30 s)"])
    expect(statusExitCode(late)).toBe(statusExitCodes.stale)
  })

  it("does not wait for versions refused (by the tree's rules or by the service) or withdrawn", () => {
    const old = now - 86_400_000
    const r = statusReport(
      inputs({
        versions: [
          { key: "d/b/amd64/default/3", changedAt: old },
          { key: "d/b/amd64/default/4", changedAt: old },
          { key: "d/b/amd64/default/5", changedAt: old }
        ],
        statusFile: statusFile({ refused: [{ path: "d/b/amd64/default/3/rootfs.squashfs", reason: "not listed in SHA256SUMS" }] }),
        treeRefusals: [{ _tag: "Refusal", path: "d/b/amd64/default/4", reason: "two rootfs files of type squashfs (a, b): one per type per version" }],
        withdrawals: [{ key: "d/b/amd64/default/5", files: [], at: now - 3_600_000, reason: "removed by hand (x)" }]
      })
    )
    expect(r.uploads).toEqual([])
    expect(r.current).toBe(true)
    expect(r.refused.map((x) => x.kind)).toEqual(["checksum", "layout"])
    expect(r.pending_deletions).toEqual([
      { version: "d/b/amd64/default/5", withdrawn_at: "2024-05-01T11:00:00.000Z", due_at: "2024-05-01T17:00:00.000Z", reason: "removed by hand (x)" }
    ])
  })

  it("writes control characters in paths and reasons as escapes, as the log does: one refusal, one line", () => {
    const r = statusReport(
      inputs({ treeRefusals: [{ _tag: "Refusal", path: "d/b/amd64/default/new\nline", reason: "folder name 'new\nline\x1b[31m' has characters other than A-Z" }] })
    )
    const lines = statusText(r, now).split("\n")
    expect(lines).toContain("  layout     d/b/amd64/default/new\\nline: folder name 'new\\nline\\x1b[31m' has characters other than A-Z")
    expect(lines.filter((l) => l.startsWith("  ")).length).toBe(1)
    // --json keeps the text as it is (JSON escapes it)
    expect(r.refused[0]!.path).toBe("d/b/amd64/default/new\nline")
  })

  it("is stale without a catalog, with a tree it cannot scan, and after writes failed for longer than the threshold", () => {
    expect(statusReport(inputs({ catalog: { problem: "/x/images.json does not exist" } })).problems).toEqual(["no catalog: /x/images.json does not exist"])
    expect(statusReport(inputs({ treeProblem: "images folder /x: does not exist" })).current).toBe(false)
    const failing = (since: number) =>
      statusReport(inputs({ statusFile: statusFile({ write_error: { reason: "EIO", since: new Date(since).toISOString(), failures: 9, retry_at: new Date(now).toISOString() } }) }))
    expect(failing(now - 60_000).current).toBe(true)
    expect(failing(now - 1_000_000).current).toBe(false)
  })
})

describe("the catalog's figures", () => {
  const item = (path: string, size: number) => ({ ftype: "x", path, size, sha256: "0".repeat(64) })
  const catalog = {
    content_id: "images",
    products: {
      "d:b:amd64:default": {
        versions: {
          "1": { items: { "lxd.tar.xz": item("images/d/b/amd64/default/1/lxd.tar.xz", 100), "incus.tar.xz": item("images/d/b/amd64/default/1/lxd.tar.xz", 100), "root.squashfs": item("images/d/b/amd64/default/1/rootfs.squashfs", 4000) } },
          "2": { items: { "lxd.tar.xz": item("images/d/b/amd64/default/2/lxd.tar.xz", 100), "root.squashfs": item("images/d/b/amd64/default/2/rootfs.squashfs", 5000) } }
        }
      }
    }
  }
  it("counts products, versions and each file's bytes once, and knows the version folders listed", () => {
    const figures = catalogFigures(JSON.stringify(catalog), "images")
    expect(figures).toEqual({ products: 1, versions: 2, bytes: 9200, listed: new Set(["d/b/amd64/default/1", "d/b/amd64/default/2"]) })
  })
  it("says what is wrong with a file that is no catalog", () => {
    expect(catalogFigures("{", "images")).toMatchObject({ problem: expect.stringMatching(/^not JSON: /) })
    expect(catalogFigures(JSON.stringify({ products: { a: { versions: { "1": {} } } } }), "images")).toEqual({
      problem: "not a catalog: products, versions and items are not all there"
    })
  })
})
