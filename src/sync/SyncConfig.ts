/**
 * The `[sync.NAME]` tables of the config file: upstream servers `watch` copies into the images tree on an
 * interval, each with the options of `sync` (`url`, `cert`, `filters`, `keep`) and its `interval`.
 */
import { Either, Schema } from "effect"
import { parseFilter, parseFilters, type SyncFilters } from "./SyncFilter.js"

/** The URL of an upstream server: https (what the clients take), or plain http on a trusted network. */
export const checkUpstreamUrl = (url: string): string | undefined => {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return `${JSON.stringify(url)} is not a URL`
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") return `${JSON.stringify(url)} is not an https:// (or http://) URL`
  if (u.search !== "" || u.hash !== "") return `${JSON.stringify(url)} has a query or fragment: give the URL clients add as the remote`
  return undefined
}

const UpstreamUrl = Schema.String.pipe(Schema.filter((u) => checkUpstreamUrl(u) ?? true))

const FilterText = Schema.String.pipe(Schema.filter((f) => Either.match(parseFilter(f), { onLeft: (reason) => reason, onRight: () => true })))

export const SyncTable = Schema.Struct({
  url: UpstreamUrl,
  /** The upstream's certificate or CA (PEM); the system's CAs when absent. */
  cert: Schema.optional(Schema.String.pipe(Schema.minLength(1))),
  /** `KEY=VALUE` strings, as `--filter` takes them. */
  filters: Schema.optional(Schema.Array(FilterText)),
  keep: Schema.optional(Schema.Int.pipe(Schema.greaterThanOrEqualTo(1))),
  /** Seconds between two syncs. */
  interval: Schema.optional(Schema.Number.pipe(Schema.greaterThanOrEqualTo(60)))
}).pipe(Schema.filter((t) => (t.cert !== undefined && t.url.startsWith("http:") ? "cert: a certificate is for an https:// url" : undefined)))
export type SyncTable = typeof SyncTable.Type

export const syncNameRule = "Expected a sync name of letters, digits, _ and - (up to 64)"

export const Syncs = Schema.Record({ key: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, { message: () => syncNameRule })), value: SyncTable })

export const syncDefaults = { interval: 3600 } as const

/** One upstream `watch` syncs from, every value settled. */
export interface SyncTarget {
  readonly name: string
  readonly url: string
  readonly certFile: string | undefined
  readonly filters: SyncFilters
  readonly keep: number | undefined
  readonly intervalMs: number
}

/** The syncs of a config file, in name order. Pure (the filters were checked with the file). */
export const syncTargets = (tables: Readonly<Record<string, SyncTable>> | undefined): ReadonlyArray<SyncTarget> =>
  Object.entries(tables ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, t]) => ({
      name,
      url: t.url,
      certFile: t.cert,
      filters: Either.getOrElse(parseFilters(t.filters ?? []), () => ({})),
      keep: t.keep,
      intervalMs: (t.interval ?? syncDefaults.interval) * 1000
    }))
