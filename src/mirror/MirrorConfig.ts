/**
 * The `[mirrors.NAME]` tables of the config file: which hosts get every generation pushed over ssh, and how to
 * reach them. The original server's keys (`user`, `key_path`, `url`, `remote`) keep their meaning; `host` is the
 * new name of `remote`, and the host of `url` is the last fallback.
 */
import { Schema } from "effect"

const NonEmpty = Schema.String.pipe(Schema.minLength(1, { message: () => "Expected a non-empty string" }))

const hostOfUrl = (url: string | undefined): string | undefined => {
  if (url === undefined) return undefined
  try {
    return new URL(url).hostname.replace(/^\[|\]$/g, "") || undefined
  } catch {
    return undefined
  }
}

/** `remote` as the original wrote it: `host` or `user@host`. */
const splitRemote = (remote: string | undefined) => {
  if (remote === undefined) return { user: undefined, host: undefined }
  const at = remote.lastIndexOf("@")
  return at === -1 ? { user: undefined, host: remote } : { user: remote.slice(0, at) || undefined, host: remote.slice(at + 1) || undefined }
}

export const MirrorTable = Schema.Struct({
  host: Schema.optional(NonEmpty),
  remote: Schema.optional(NonEmpty),
  url: Schema.optional(NonEmpty),
  user: Schema.optional(NonEmpty.pipe(Schema.pattern(/^[A-Za-z0-9._-]+$/, { message: () => "Expected a user name (letters, digits, . _ -)" }))),
  key_path: Schema.optional(NonEmpty),
  port: Schema.optional(Schema.Int.pipe(Schema.between(1, 65535))),
  root_dir: Schema.optional(NonEmpty),
  known_hosts: Schema.optional(NonEmpty),
  accept_new_host_key: Schema.optional(Schema.Boolean)
}).pipe(
  Schema.filter((m) => {
    if (m.url !== undefined && hostOfUrl(m.url) === undefined) return `url: ${JSON.stringify(m.url)} is not a URL with a host`
    if (m.host === undefined && splitRemote(m.remote).host === undefined && hostOfUrl(m.url) === undefined) {
      return "no host: set host (or the original's remote, or url)"
    }
    if (/[\s:'"]/.test(m.host ?? splitRemote(m.remote).host ?? "")) return "host: Expected a host name or address, without spaces, quotes or a port"
    return undefined
  })
)
export type MirrorTable = typeof MirrorTable.Type

export const mirrorNameRule = "Expected a mirror name of letters, digits, _ and - (up to 64)"

/** Mirror names become file names in the state folder. */
export const MirrorName = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, { message: () => mirrorNameRule }))

export const Mirrors = Schema.Record({ key: MirrorName, value: MirrorTable })

/** One mirror, every value settled. */
export interface MirrorTarget {
  readonly name: string
  readonly host: string
  readonly user: string
  readonly port: number
  /** ssh's own choice of key when undefined. */
  readonly keyPath: string | undefined
  /** The web root on the mirror, as its ssh account (or rrsync) sees it. */
  readonly rootDir: string
  readonly knownHosts: string
  readonly acceptNewHostKey: boolean
}

export const mirrorDefaults = { user: "lxdadm", port: 22, root_dir: "/var/www/simplestreams", known_hosts: "known_hosts (in the state folder)" } as const

/** The mirrors of a config file, in name order. `stateDir` holds the default known_hosts. Pure. */
export const mirrorTargets = (
  tables: Readonly<Record<string, MirrorTable>> | undefined,
  stateDir: string
): ReadonlyArray<MirrorTarget> =>
  Object.entries(tables ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, m]) => {
      const remote = splitRemote(m.remote)
      return {
        name,
        host: m.host ?? remote.host ?? hostOfUrl(m.url)!,
        user: m.user ?? remote.user ?? mirrorDefaults.user,
        port: m.port ?? mirrorDefaults.port,
        keyPath: m.key_path,
        rootDir: m.root_dir ?? mirrorDefaults.root_dir,
        knownHosts: m.known_hosts ?? `${stateDir.replace(/\/+$/, "")}/known_hosts`,
        acceptNewHostKey: m.accept_new_host_key ?? false
      }
    })
