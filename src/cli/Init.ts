/** `init`: folders, config file, self-signed certificate and nginx site. Idempotent; never overwrites; no network. */
import { Command as Cli, Options } from "@effect/cli"
import { Command, CommandExecutor, FileSystem, Path } from "@effect/platform"
import { Console, Data, Effect, Option } from "effect"
import { configTemplate } from "../config/AppConfig.js"
import { renderSite, siteFileName } from "../server/NginxSite.js"
import { ensureCertificate, serverUrl, subjectNames } from "../server/Tls.js"
import { defaults, serveDefaults, setting } from "../config/Settings.js"
import { LoadedConfig } from "./Global.js"
import {
  privateConfigKeys,
  privateHttpPort,
  privateOptions,
  resolvePrivate,
  serverInstructions,
  warnConfigNotPrivate,
  warnPlainHttpSites
} from "./Private.js"
import { siteMismatch } from "../server/PrivateSite.js"
import { heldToKey } from "./HeldToKey.js"


export class InitError extends Data.TaggedError("InitError")<{ readonly reason: string }> {
  override get message() {
    return this.reason
  }
}

export const serverOptions = {
  rootDir: Options.directory("root-dir").pipe(
    Options.withDescription(`The web root, holding images/ and streams/ (default ${defaults.root_dir}; config key root_dir)`),
    Options.optional
  ),
  sslDir: Options.directory("ssl-dir").pipe(
    Options.withDescription(`Where the certificate and key are (default ${defaults.ssl_dir}; config key ssl_dir)`),
    Options.optional
  ),
  hostname: Options.text("hostname").pipe(
    Options.withDescription("A name clients use for this server; repeat for more (config key hostname, a list)"),
    Options.repeated,
    // zero or more: a default shows it in brackets in the usage line
    Options.withDefault([]),
    heldToKey("hostname", "hostname")
  )
}

export const resolveServerOptions = (flags: {
  readonly rootDir: Option.Option<string>
  readonly sslDir: Option.Option<string>
  readonly hostname: ReadonlyArray<string>
}) =>
  Effect.map(LoadedConfig, ({ file }) => ({
    rootDir: setting(file, "root_dir", flags.rootDir),
    sslDir: setting(file, "ssl_dir", flags.sslDir),
    hostnames: setting(file, "hostname", flags.hostname.length > 0 ? Option.some(flags.hostname) : Option.none())
  }))

const initOptions = {
  ...serverOptions,
  nginxDir: Options.directory("nginx-dir").pipe(
    Options.withDescription(`nginx's folder, with sites-available/ and sites-enabled/ (default ${defaults.nginx_dir}; config key nginx_dir)`),
    Options.optional
  ),
  port: Options.integer("port").pipe(heldToKey("port", "port"), Options.withDescription("The HTTPS port of the nginx site (default 443; config key port)"), Options.optional),
  httpPort: Options.integer("http-port").pipe(
    heldToKey("http-port", "http_port"),
    Options.withDescription("The plain HTTP port serving images/ only, 0 for none (default 80; config key http_port; none when private)"),
    Options.optional
  ),
  ...privateOptions
}

/** A running system nginx: its pidfile names a live process. */
const systemNginxRunning = (fs: FileSystem.FileSystem) =>
  fs.readFileString("/run/nginx.pid").pipe(
    Effect.map((t) => {
      try {
        process.kill(Number(t.trim()), 0)
        return true
      } catch {
        return false
      }
    }),
    Effect.orElseSucceed(() => false)
  )

/** The `[prune]` table, commented, with its defaults: after every top-level key, as TOML wants tables. */
const pruneTable = [
  "",
  "# [prune]",
  `# keep = ${defaults.prune.keep}              # the newest N versions of every product; watch: off unless set (prune: default ${defaults.prune.keep})`,
  "# max_age_days = 90     # off unless set",
  `# grace_hours = ${defaults.prune.grace_hours}       # default ${defaults.prune.grace_hours}; fractions allowed`,
  "# dangling_hours = 24   # off unless set; watch deletes dangling folders at each full reconcile",
  ""
].join("\n")

export const init = Cli.make("init", initOptions, (flags) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const executor = yield* CommandExecutor.CommandExecutor
    const loaded = yield* LoadedConfig
    const server = yield* resolveServerOptions(flags)
    const rootDir = path.resolve(server.rootDir)
    const nginxDir = path.resolve(setting(loaded.file, "nginx_dir", flags.nginxDir))
    const port = setting(loaded.file, "port", flags.port)
    const fail = (reason: string) => new InitError({ reason })
    // bad secrets or flags stop init before it changes anything else
    const httpPort = yield* privateHttpPort(flags)
    const secret = yield* resolvePrivate(flags)
    const io =
      (what: string) =>
      <A, E extends { readonly message: string }, R>(self: Effect.Effect<A, E, R>) =>
        Effect.mapError(self, (e) => fail(`${what}: ${e.message}`))
    let changed = false

    for (const dir of [path.join(rootDir, "images"), path.join(rootDir, "streams", "v1")]) {
      if (yield* fs.exists(dir).pipe(Effect.orElseSucceed(() => false))) continue
      yield* fs.makeDirectory(dir, { recursive: true, mode: 0o755 }).pipe(io(`cannot make ${dir}`))
      yield* fs.chmod(dir, 0o755).pipe(io(`cannot set the mode of ${dir}`))
      yield* Effect.logInfo(`made ${dir}`)
    }

    if (yield* fs.exists(loaded.path).pipe(Effect.orElseSucceed(() => false))) {
      yield* Effect.logInfo(`kept the existing config file ${loaded.path}`)
      yield* warnConfigNotPrivate(secret)
    } else {
      yield* fs.makeDirectory(path.dirname(loaded.path), { recursive: true }).pipe(io(`cannot make ${path.dirname(loaded.path)}`))
      const given = {
        img_dir: path.join(rootDir, "images"),
        streams_dir: path.join(rootDir, "streams", "v1"),
        root_dir: rootDir,
        ssl_dir: path.resolve(server.sslDir),
        nginx_dir: nginxDir,
        hostname: server.hostnames,
        port,
        http_port: httpPort
      }
      // what init was given and differs from the default is a setting; status, update and the service read it
      const set = new Set(Object.entries(given).filter(([k, v]) => JSON.stringify(v) !== JSON.stringify(defaults[k as keyof typeof given])).map(([k]) => k))
      const text = configTemplate({
        log_file: JSON.stringify(defaults.log_file),
        log_format: `${JSON.stringify(defaults.log_format)}       # text | json (stderr; the log file is always text)`,
        verbose: String(defaults.verbose),
        quiet: `${defaults.quiet}             # no progress line on the terminal`,
        img_dir: JSON.stringify(given.img_dir),
        streams_dir: JSON.stringify(given.streams_dir),
        compat: `${JSON.stringify(defaults.compat)}            # both | lxd | incus`,
        state_dir: JSON.stringify(defaults.state_dir),
        pidfile: JSON.stringify(defaults.pidfile),
        settle: `${defaults.settle}                  # seconds`,
        reconcile_interval: `${defaults.reconcile_interval}   # seconds`,
        root_dir: JSON.stringify(given.root_dir),
        ssl_dir: JSON.stringify(given.ssl_dir),
        nginx_dir: JSON.stringify(given.nginx_dir),
        hostname: JSON.stringify(given.hostname),
        host: `${JSON.stringify(defaults.host)}           # serve only`,
        port: `${port}                 # init: nginx's HTTPS port; serve: default ${serveDefaults.port}`,
        http_port: `${httpPort}             # 0: no plain HTTP server`,
        public_url: `"https://images.example.com"   # the catalog page's commands; default https://<first hostname>[:port]`,
        stale_after: `${defaults.stale_after}             # seconds a settled upload may wait before status and /readyz call the catalog stale`,
        metrics_file: `"/var/lib/prometheus/node-exporter/lxd-image-server.prom"   # watch: node-exporter textfile; default none`,
        private: `${defaults.private}             # init, serve, and the catalog page: clients must present a secret`,
        private_access: `${JSON.stringify(defaults.private_access)}    # path | basic | both`,
        private_user: JSON.stringify(defaults.private_user),
        private_token_file: `""   # default: private-token beside this file`,
        htpasswd_file: `""        # default: htpasswd beside this file`
      }, set)
      yield* fs.writeFileString(loaded.path, text + privateConfigKeys(secret) + pruneTable, { mode: 0o644 }).pipe(io(`cannot write ${loaded.path}`))
      yield* Effect.logInfo(`wrote the config file ${loaded.path}`)
    }

    const cert = yield* ensureCertificate(server.sslDir, server.hostnames)
    yield* Effect.logInfo(cert.created ? `made a self-signed certificate ${cert.cert}` : `kept the existing certificate ${cert.cert}`)
    changed ||= cert.created

    const available = path.join(nginxDir, "sites-available", siteFileName)
    const enabled = path.join(nginxDir, "sites-enabled", siteFileName)
    const sitePrivate = secret === undefined ? undefined : { form: secret.form, token: secret.token, htpasswd: secret.htpasswdFile }
    if (yield* fs.exists(available).pipe(Effect.orElseSucceed(() => false))) {
      const mismatch = siteMismatch(yield* fs.readFileString(available).pipe(io(`cannot read ${available}`)), sitePrivate)
      if (mismatch !== undefined) return yield* Effect.fail(fail(`the existing nginx site ${available} does not fit: ${mismatch}; remove it and run init again (init never overwrites it)`))
      yield* Effect.logInfo(`kept the existing nginx site ${available}`)
    } else {
      yield* fs.makeDirectory(path.dirname(available), { recursive: true }).pipe(io(`cannot make ${path.dirname(available)}`))
      const site = renderSite({ rootDir, cert: cert.cert, key: cert.key, hostnames: subjectNames(server.hostnames).filter((n) => n !== "127.0.0.1"), port, httpPort, private: sitePrivate })
      // a private site holds the token
      yield* fs.writeFileString(available, site, { mode: secret === undefined ? 0o644 : 0o640 }).pipe(io(`cannot write ${available}`))
      yield* fs.chmod(available, secret === undefined ? 0o644 : 0o640).pipe(io(`cannot set the mode of ${available}`))
      yield* Effect.logInfo(`wrote the nginx site ${available}`)
      changed = true
    }
    const linked = yield* fs.readLink(enabled).pipe(Effect.option)
    if (linked._tag === "None" && !(yield* fs.exists(enabled).pipe(Effect.orElseSucceed(() => false)))) {
      yield* fs.makeDirectory(path.dirname(enabled), { recursive: true }).pipe(io(`cannot make ${path.dirname(enabled)}`))
      yield* fs.symlink(available, enabled).pipe(io(`cannot link ${enabled}`))
      yield* Effect.logInfo(`enabled the site: ${enabled} -> ${available}`)
      changed = true
    }

    if (changed && nginxDir === defaults.nginx_dir && (yield* systemNginxRunning(fs))) {
      // nginx's own messages go to our stderr, where the person running init sees them
      const nginx = (...args: Array<string>) =>
        executor.exitCode(Command.make("nginx", ...args).pipe(Command.stdout("inherit"), Command.stderr("inherit"))).pipe(io("cannot run nginx"))
      if ((yield* nginx("-t")) !== 0) {
        return yield* Effect.fail(fail("nginx -t failed: the site was written but nginx was not reloaded"))
      }
      if ((yield* nginx("-s", "reload")) !== 0) return yield* Effect.fail(fail("nginx -s reload failed"))
      yield* Effect.logInfo("nginx -t passed; reloaded nginx")
    } else if (changed) {
      yield* Effect.logInfo(`nginx was not reloaded (${nginxDir === defaults.nginx_dir ? "no running system nginx" : "custom --nginx-dir"})`)
    }

    if (secret !== undefined) yield* warnPlainHttpSites(nginxDir, enabled)

    const pem = yield* fs.readFileString(cert.cert).pipe(io(`cannot read ${cert.cert}`))
    const host = subjectNames(server.hostnames)[0]!
    const url = serverUrl(host, port)
    yield* Console.log([`lxd-image-server is set up at ${url}`, ...serverInstructions(url, pem, cert.cert, secret, port)].join("\n"))
  })
).pipe(Cli.withDescription("Set up folders, the config file, a self-signed certificate and the nginx site (never overwrites)"))
