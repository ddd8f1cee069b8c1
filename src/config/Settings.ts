/**
 * Every setting in one place: its default, written once, and the one rule that picks a value: the flag, else
 * the config file's key, else the default. Commands read their settings through `setting`, never with a
 * default of their own.
 */
import { Option } from "effect"
import type { ConfigFile } from "./AppConfig.js"

type Settings = { readonly [K in keyof ConfigFile]-?: NonNullable<ConfigFile[K]> }

export const defaults: Settings = {
  log_file: "./lxd-image-server.log",
  verbose: false,
  log_format: "text",
  quiet: false,
  img_dir: "/var/www/simplestreams/images",
  streams_dir: "/var/www/simplestreams/streams/v1",
  compat: "both",
  state_dir: "/var/lib/lxd-image-server",
  pidfile: "/run/lxd-image-server/lxd-image-server.pid",
  settle: 2,
  reconcile_interval: 600,
  root_dir: "/var/www/simplestreams",
  ssl_dir: "/etc/nginx/ssl",
  nginx_dir: "/etc/nginx",
  hostname: [],
  host: "0.0.0.0",
  port: 443,
  http_port: 80,
  mirrors: {},
  sync: {},
  public_url: "",
  private: false,
  private_access: "path",
  private_user: "images",
  // "": beside the config file (private-token, htpasswd)
  private_token_file: "",
  htpasswd_file: "",
  // max_age_days and dangling_hours: no default, off unless given
  prune: { keep: 3, grace_hours: 6 },
  // 15 minutes: more than a full reconcile (600 s), which catches an upload whose file events were lost, plus
  // the hashing of a big image on a slow disk; far less than the hour clients may keep an old catalog
  stale_after: 900,
  metrics_file: ""
}

/**
 * Where `serve` differs: its own pidfile, so that `serve` and the `watch` service never take each other's,
 * and not LXD's 8443, so that both can run on one host.
 */
export const serveDefaults: Pick<Settings, "port" | "pidfile"> = { port: 8444, pidfile: "/run/lxd-image-server/serve.pid" }

/** The flag, else the config file's key, else the default (or the command's own, for `serve`). */
export const setting = <K extends keyof ConfigFile>(
  file: ConfigFile,
  key: K,
  flag: Option.Option<Settings[K]> = Option.none(),
  fallback: Settings[K] = defaults[key]
): Settings[K] => Option.getOrElse(flag, () => (file[key] as Settings[K] | undefined) ?? fallback)

type PruneSettings = NonNullable<ConfigFile["prune"]>

/** A `[prune]` setting: the flag, else the config file's key, else the default (undefined: off). */
export const pruneSetting = <K extends keyof PruneSettings>(
  file: ConfigFile,
  key: K,
  flag: Option.Option<NonNullable<PruneSettings[K]>> = Option.none()
): PruneSettings[K] => Option.getOrElse(flag, () => file.prune?.[key] ?? defaults.prune[key])
