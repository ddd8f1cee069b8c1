/**
 * The config file: TOML, every command-line option has a key, flags win over the file. Validated with Schema;
 * a bad key or value stops the program with the file, the line when it is known, and what was expected.
 */
import { FileSystem } from "@effect/platform"
import { Data, Effect, Either, ParseResult, Schema } from "effect"
import { isIP } from "node:net"
import { parse as parseToml, TomlError } from "smol-toml"
import { mirrorNameRule, Mirrors, MirrorTable } from "../mirror/MirrorConfig.js"
import { compatModes } from "../simplestreams/Compat.js"
import { syncNameRule, Syncs, SyncTable } from "../sync/SyncConfig.js"
import { logFormats } from "./Logging.js"
import { accessForms } from "../server/PrivateAccess.js"

export const defaultConfigPath = "/etc/lxd-image-server/config.toml"
export const configPathEnv = "LXD_IMAGE_SERVER_CONFIG"

/** `[prune]`: `prune`'s defaults, and `watch`'s policy (off there unless `keep` or `max_age_days` is set). */
const PruneTable = Schema.Struct({
  keep: Schema.optional(Schema.Int.pipe(Schema.greaterThanOrEqualTo(1))),
  max_age_days: Schema.optional(Schema.Number.pipe(Schema.greaterThan(0))),
  grace_hours: Schema.optional(Schema.Number.pipe(Schema.greaterThanOrEqualTo(0))),
  dangling_hours: Schema.optional(Schema.Number.pipe(Schema.greaterThan(0)))
})

/** A string among a few, with a message that lists them. */
function oneOf<const L extends ReadonlyArray<string>>(literals: L) {
  return Schema.Literal(...literals).annotations({
    message: (issue) => ({
      message: `Expected one of ${literals.map((m) => `"${m}"`).join(", ")}, actual ${JSON.stringify(issue.actual)}`,
      override: true
    })
  })
}

/** A DNS label: letters, digits and inner hyphens, at most 63. */
const label = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
const dnsName = new RegExp(`^(?:\\*\\.)?${label}(?:\\.${label})*$`)

/**
 * A name clients use for this server: a DNS name (a leading `*.` for a wildcard) or an IP address. It is
 * written into the nginx site's server_name and the certificate's names, so nothing else may pass.
 */
export const Hostname = Schema.String.pipe(
  Schema.filter((h) => isIP(h) !== 0 || (h.length <= 253 && dnsName.test(h)), {
    message: (issue) => `'${String(issue.actual)}' is not a DNS name (letters, digits, hyphens and dots; *. first for a wildcard) or an IP address`
  })
).annotations({ identifier: "hostname" })

export const ConfigFile = Schema.Struct({
  log_file: Schema.optional(Schema.String),
  verbose: Schema.optional(Schema.Boolean),
  log_format: Schema.optional(oneOf(logFormats)),
  quiet: Schema.optional(Schema.Boolean),
  img_dir: Schema.optional(Schema.String),
  streams_dir: Schema.optional(Schema.String),
  state_dir: Schema.optional(Schema.String),
  pidfile: Schema.optional(Schema.String),
  settle: Schema.optional(Schema.Number.pipe(Schema.greaterThanOrEqualTo(0), Schema.lessThanOrEqualTo(3600))),
  reconcile_interval: Schema.optional(Schema.Number.pipe(Schema.greaterThanOrEqualTo(1))),
  root_dir: Schema.optional(Schema.String),
  ssl_dir: Schema.optional(Schema.String),
  nginx_dir: Schema.optional(Schema.String),
  hostname: Schema.optional(Schema.Array(Hostname)),
  host: Schema.optional(Schema.String),
  port: Schema.optional(Schema.Int.pipe(Schema.between(1, 65535))),
  http_port: Schema.optional(Schema.Int.pipe(Schema.between(0, 65535))),
  // the clients add https remotes only (SIMPLESTREAMS.md §1.1); "" means https://<first hostname>[:port]
  public_url: Schema.optional(
    Schema.String.pipe(Schema.filter((u) => u === "" || /^https:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(u), { message: () => "an https:// URL with no query (the URL clients add as the remote)" }))
  ),
  // private servers (init, serve; the catalog page): see src/cli/Private.ts
  private: Schema.optional(Schema.Boolean),
  private_access: Schema.optional(oneOf(accessForms)),
  private_user: Schema.optional(Schema.String),
  private_token_file: Schema.optional(Schema.String),
  htpasswd_file: Schema.optional(Schema.String),
  prune: Schema.optional(PruneTable),
  // seconds a settled upload may wait for the catalog before `status` and /readyz call the catalog stale
  stale_after: Schema.optional(Schema.Number.pipe(Schema.greaterThan(0))),
  // watch's node-exporter textfile; "" means none
  metrics_file: Schema.optional(Schema.String),
  compat: Schema.optional(oneOf(compatModes)),
  mirrors: Schema.optional(Mirrors),
  sync: Schema.optional(Syncs)
})
export type ConfigFile = typeof ConfigFile.Type

export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly path: string
  readonly line: number | undefined
  readonly reason: string
}> {
  override get message() {
    return `config file ${this.path}${this.line === undefined ? "" : `, line ${this.line}`}: ${this.reason}`
  }
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/**
 * The line of `key = …` in the file text, for messages about that key. A key inside a table
 * (`mirrors.eu1.port`) is looked for below the table's header, `[mirrors.eu1]`.
 */
const lineOfKey = (text: string, key: ReadonlyArray<string>): number | undefined => {
  const lines = text.split("\n")
  const find = (from: number, k: string) => {
    const e = escapeRegExp(k)
    const i = lines.findIndex((l, n) => n >= from && new RegExp(`^\\s*("?${e}"?\\s*=|\\[+\\s*"?${e}"?\\s*\\])`).test(l))
    return i === -1 ? undefined : i
  }
  const last = key[key.length - 1]
  if (last === undefined) return undefined
  // the key itself (`port = …`, or a table's header, `[mirrors.eu1]`), else the key below its table's header
  const whole = find(0, key.join("."))
  if (whole !== undefined) return whole + 1
  const table = key.length === 1 ? undefined : find(0, key.slice(0, -1).join("."))
  if (table === undefined) return undefined
  return (find(table + 1, last) ?? table) + 1
}

/**
 * Why the config file would refuse this value for `key`, if it would: the rule a flag of the same setting is
 * held to, so that the command line lets through nothing the file would not.
 */
export const settingProblem = (key: keyof ConfigFile, value: unknown): string | undefined => {
  const decoded = Schema.decodeUnknownEither(ConfigFile, { errors: "first" })({ [key]: value })
  if (Either.isRight(decoded)) return undefined
  return ParseResult.ArrayFormatter.formatErrorSync(decoded.left)[0]?.message ?? decoded.left.message
}

/** Parses and checks the text of a config file. Pure, for tests. */
export const parseConfigText = (path: string, text: string): Either.Either<ConfigFile, ConfigError> => {
  let raw: unknown
  try {
    raw = parseToml(text)
  } catch (e) {
    const line = e instanceof TomlError ? e.line : undefined
    const reason = (e as Error).message.split("\n")[0]!.replace(/^Invalid TOML document: /, "")
    return Either.left(new ConfigError({ path, line, reason: `not valid TOML: ${reason}` }))
  }
  const decoded = Schema.decodeUnknownEither(ConfigFile, { onExcessProperty: "error", errors: "first" })(raw)
  return Either.mapLeft(decoded, (error) => {
    const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
    const keyPath = (issue?.path ?? []).map(String)
    const key = keyPath.length === 0 ? undefined : keyPath.join(".")
    // a key unknown inside a table (a mirror's, `[prune]`) is told with the keys of that table
    const inMirror = keyPath[0] === "mirrors" && keyPath.length === 3
    const inSync = keyPath[0] === "sync" && keyPath.length === 3
    const inPrune = keyPath[0] === "prune" && keyPath.length === 2
    const known = Object.keys(inMirror ? MirrorTable.from.fields : inSync ? SyncTable.from.fields : inPrune ? PruneTable.fields : ConfigFile.fields).join(", ")
    const reason =
      issue === undefined
        ? error.message
        : issue._tag === "Unexpected" && keyPath[0] === "mirrors" && keyPath.length === 2
          ? `${key}: ${mirrorNameRule}`
          : issue._tag === "Unexpected" && keyPath[0] === "sync" && keyPath.length === 2
          ? `${key}: ${syncNameRule}`
          : issue._tag === "Unexpected"
          ? `unknown key '${key}' (known keys${inMirror ? " of a mirror" : inSync ? " of a sync" : ""}: ${known})`
          : `${key}: ${issue.message}`
    return new ConfigError({ path, line: lineOfKey(text, keyPath), reason })
  })
}

/**
 * The config file `init` writes: every key with its value; the keys in `set` (values init was given that differ
 * from the default) are written as settings, the others stay commented, showing the default.
 */
export const configTemplate = (values: Readonly<Record<string, string>>, set: ReadonlySet<string> = new Set()): string =>
  [
    "# lxd-image-server configuration. Every key is optional; command-line flags win over this file.",
    "# `lxd-image-server reload` (SIGHUP) makes the running service read it again.",
    "",
    ...Object.entries(values).map(([k, v]) => `${set.has(k) ? "" : "# "}${k} = ${v}`),
    ""
  ].join("\n")

/** Reads the config file; one that does not exist is an empty config, not an error. */
export const loadConfigFile = (path: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.map((t): string | undefined => t),
      Effect.catchIf(
        (e) => e._tag === "SystemError" && e.reason === "NotFound",
        () => Effect.succeed(undefined)
      ),
      Effect.mapError((e) => new ConfigError({ path, line: undefined, reason: `cannot read: ${e.message}` }))
    )
    if (text === undefined) {
      yield* Effect.logDebug(`config file ${path} does not exist: using defaults and flags`)
      return {} as ConfigFile
    }
    return yield* parseConfigText(path, text)
  })
