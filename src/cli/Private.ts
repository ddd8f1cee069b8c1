/**
 * `--private` for `init` and `serve`, and the private settings the catalog page follows: the one place they
 * resolve (flag, else config key, else default), where the secrets are made or read, and what is printed.
 *
 * `init` and `serve` share the secrets through the config file: both read `private_token_file` and
 * `htpasswd_file`, by default `private-token` and `htpasswd` beside the config file, and both make one that is
 * missing at that default place. A file named in the config must already be there: a typo must not quietly
 * make a second set of secrets.
 */
import { Options } from "@effect/cli"
import { FileSystem, Path } from "@effect/platform"
import { Effect, Option } from "effect"
import { setting } from "../config/Settings.js"
import {
  type AccessForm,
  accessForms,
  type Credentials,
  gateRules,
  type HtpasswdEntry,
  passwordUrl,
  takesPassword,
  takesToken,
  tokenUrl,
  userProblem
} from "../server/PrivateAccess.js"
import { keptPasswordPath, makeHtpasswd, makeToken, passwordMatches, readHtpasswd, readKeptPassword, readToken } from "../server/PrivateSecrets.js"
import { remoteAddCommand, remoteInstructions } from "../server/Tls.js"
import { plainHttpSites } from "../server/PrivateSite.js"
import type { staticApp } from "../server/HttpServe.js"
import { guard, makePasswordCheck } from "../server/PrivateGate.js"
import { UsageError } from "./Failure.js"
import { LoadedConfig } from "./Global.js"

export const privateOptions = {
  private: Options.boolean("private").pipe(
    Options.withDescription("Serve only clients that present a secret: a token in the URL's path, or a user and password (config key private)")
  ),
  privateAccess: Options.choice("private-access", accessForms).pipe(
    Options.withDescription("Which secret a private server takes: path (https://host/<token>), basic (https://user:password@host) or both; implies --private (default path; config key private_access)"),
    Options.optional
  ),
  privateUser: Options.text("private-user").pipe(
    Options.withDescription("The user the htpasswd file is made with, when it is made (default images; config key private_user)"),
    Options.optional
  )
}

export interface PrivateFlags {
  readonly private: boolean
  readonly privateAccess: Option.Option<AccessForm>
  readonly privateUser: Option.Option<string>
}

/** A private server's settings and secrets, as `init` and `serve` use them. */
export interface PrivateServer {
  readonly form: AccessForm
  readonly tokenFile: string
  readonly htpasswdFile: string
  readonly token: string | undefined
  readonly users: ReadonlyArray<HtpasswdEntry>
  /** The password `init` made, when it is kept and still the user's. */
  readonly kept: Credentials | undefined
}

/** The secrets files: the config's keys, else beside the config file; and whether the config named them. */
const secretFiles = Effect.gen(function* () {
  const path = yield* Path.Path
  const { file, path: configPath } = yield* LoadedConfig
  const beside = (name: string) => path.join(path.dirname(path.resolve(configPath)), name)
  const token = setting(file, "private_token_file")
  const htpasswd = setting(file, "htpasswd_file")
  return {
    tokenFile: token === "" ? beside("private-token") : path.resolve(token),
    htpasswdFile: htpasswd === "" ? beside("htpasswd") : path.resolve(htpasswd),
    namedToken: token !== "",
    namedHtpasswd: htpasswd !== ""
  }
})

/** The form, when the server is private (`--private`, `--private-access`, or `private = true`). */
const privateForm = (flags: PrivateFlags) =>
  Effect.map(LoadedConfig, ({ file }) =>
    flags.private || Option.isSome(flags.privateAccess) || setting(file, "private") ? Option.some(setting(file, "private_access", flags.privateAccess)) : Option.none<AccessForm>()
  )

const usage = (e: { readonly message: string }) => new UsageError({ reason: e.message })

/**
 * The private server the flags and the config ask for, its secrets made where missing at their default
 * place; undefined for a public one. A bad token, user name or htpasswd file, or a named file that is missing
 * or unreadable, is a UsageError (one line, exit 2); a file that cannot be made, a PrivateSecretsError.
 */
export const resolvePrivate = (flags: PrivateFlags) =>
  Effect.gen(function* () {
    const form = yield* privateForm(flags)
    if (Option.isNone(form)) return undefined
    const { file } = yield* LoadedConfig
    const files = yield* secretFiles
    const user = setting(file, "private_user", flags.privateUser)
    const badUser = userProblem(user)
    if (badUser !== undefined) return yield* new UsageError({ reason: `--private-user: ${badUser}` })
    // a file is made only at its default place, and only when every file already there is good: bad input
    // stops the command before it makes anything
    const fs = yield* FileSystem.FileSystem
    const missing = (want: boolean, named: boolean, file: string) =>
      want && !named ? Effect.map(fs.exists(file), (there) => !there).pipe(Effect.orElseSucceed(() => false)) : Effect.succeed(false)
    const makeTokenFile = yield* missing(takesToken(form.value), files.namedToken, files.tokenFile)
    const makeUsersFile = yield* missing(takesPassword(form.value), files.namedHtpasswd, files.htpasswdFile)
    const tokenThere = takesToken(form.value) && !makeTokenFile ? yield* readToken(files.tokenFile).pipe(Effect.mapError(usage)) : undefined
    const usersThere = takesPassword(form.value) && !makeUsersFile ? yield* readHtpasswd(files.htpasswdFile).pipe(Effect.mapError(usage)) : undefined
    const token = makeTokenFile ? yield* makeToken(files.tokenFile) : tokenThere
    if (makeTokenFile) yield* Effect.logInfo(`made ${files.tokenFile}`)
    const users = makeUsersFile ? yield* makeHtpasswd(files.htpasswdFile, user) : (usersThere ?? [])
    if (makeUsersFile) yield* Effect.logInfo(`made ${files.htpasswdFile} (user ${user}) and ${keptPasswordPath(files.htpasswdFile)}`)
    const kept = takesPassword(form.value) ? yield* readKeptPassword(files.htpasswdFile) : Option.none<Credentials>()
    // a password changed since init made it is not printed: the URL would not work
    const entry = Option.flatMap(kept, (k) => Option.fromNullable(users.find((u) => u.user === k.user)))
    const keptValid =
      Option.isSome(kept) && Option.isSome(entry) ? yield* passwordMatches(entry.value, kept.value.password).pipe(Effect.orElseSucceed(() => false)) : false
    return {
      form: form.value,
      ...files,
      token,
      users,
      kept: keptValid ? Option.getOrUndefined(kept) : undefined
    } satisfies PrivateServer
  })

/**
 * What the catalog page needs of a private server: its form and (path form alone) its token. Never makes a
 * secret; a token it cannot read leaves TOKEN on the page, with a warning.
 */
export const privatePage = Effect.gen(function* () {
  const form = yield* privateForm({ private: false, privateAccess: Option.none(), privateUser: Option.none() })
  if (Option.isNone(form)) return undefined
  if (form.value !== "path") return { form: form.value, token: undefined }
  const { tokenFile } = yield* secretFiles
  const token = yield* readToken(tokenFile).pipe(
    Effect.catchAll((e) => Effect.as(Effect.logWarning(`${e.message}: the catalog page shows TOKEN in place of the token`), undefined))
  )
  return { form: form.value, token }
})

/** The URLs to add the server with: the first one the instructions use, and for `both` the password one too. */
export const privateUrls = (base: string, server: PrivateServer): { readonly first: string; readonly password: string | undefined } => {
  const user = server.kept?.user ?? server.users[0]?.user ?? "USER"
  const password = takesPassword(server.form) ? passwordUrl(base, user, server.kept?.password ?? "PASSWORD") : undefined
  return { first: server.token !== undefined ? tokenUrl(base, server.token) : password!, password: server.token !== undefined ? password : undefined }
}

/** How to add the server as a remote, pin included (Tls.remoteInstructions), with the secret for a private one. */
export const serverInstructions = (url: string, pem: string, certPath: string, server: PrivateServer | undefined, port: number): ReadonlyArray<string> =>
  server === undefined
    ? remoteInstructions(url, pem, certPath)
    : [...remoteInstructions(privateUrls(url, server).first, pem, certPath), ...privateLines(url, server, port)]

/** The lines printed after the remote instructions of a private server. */
const privateLines = (base: string, server: PrivateServer, port: number, remote = "myimages"): ReadonlyArray<string> => {
  const { password } = privateUrls(base, server)
  return [
    ...(password === undefined
      ? []
      : [
          "With the user and password instead of the token:",
          `  ${remoteAddCommand("lxc", remote, password)}`,
          `  ${remoteAddCommand("incus", remote, password)}`
        ]),
    "",
    `Private (${server.form}): clients must present ${server.form === "path" ? "the token" : server.form === "basic" ? "a user and password" : "the token or a user and password"}; the URLs above hold the secret.`,
    ...(server.token === undefined ? [] : [`  token: ${server.tokenFile}`]),
    ...(takesPassword(server.form) ? [`  users: ${server.htpasswdFile} (${server.users.map((u) => u.user).join(", ")})`] : []),
    ...(takesPassword(server.form) && server.kept === undefined
      ? [`  the password is not kept in ${keptPasswordPath(server.htpasswdFile)}: put it in place of PASSWORD`]
      : []),
    "  No plain-HTTP server: clients fetch image files over http:// first and would send the secret there in clear.",
    ...(port === 443
      ? []
      : [`  The URL names port ${port}: clients send that first http:// try to port ${port}, so the secret crosses the network unencrypted before TLS is tried. Use port 443.`])
  ]
}

/** `serve`'s files behind the private server's gate, or as they are for a public one. */
export const behindSecret = (server: PrivateServer | undefined, files: ReturnType<typeof staticApp>) =>
  Effect.gen(function* () {
    if (server === undefined) return files
    const passwords = takesPassword(server.form) ? yield* makePasswordCheck(server.htpasswdFile) : undefined
    return guard(gateRules(server.form, server.token), passwords)(files)
  })

/** The plain-HTTP port of the nginx site: none for a private server, where `--http-port` is bad input. */
export const privateHttpPort = (flags: PrivateFlags & { readonly httpPort: Option.Option<number> }) =>
  Effect.gen(function* () {
    const { file } = yield* LoadedConfig
    if (Option.isNone(yield* privateForm(flags))) return setting(file, "http_port", flags.httpPort)
    if (Option.getOrElse(flags.httpPort, () => 0) !== 0) {
      return yield* new UsageError({ reason: "--http-port: a private server has no plain-HTTP port (clients would send the secret there in clear)" })
    }
    return 0
  })

/** What `init --private` adds to the config file it writes: update and the service need it for the page's URL. */
export const privateConfigKeys = (server: PrivateServer | undefined): string =>
  server === undefined ? "" : `\nprivate = true\nprivate_access = ${JSON.stringify(server.form)}\n`

/** A kept config file that does not say what `init --private` was told: the page and later inits would differ. */
export const warnConfigNotPrivate = (server: PrivateServer | undefined) =>
  Effect.gen(function* () {
    const { file, path } = yield* LoadedConfig
    if (server === undefined || (file.private === true && setting(file, "private_access") === server.form)) return
    yield* Effect.logWarning(
      `${path} does not say private = true, private_access = "${server.form}": add them, or update and the service write the catalog page with the wrong URL (and a later init, as the package's upgrades run it, refuses the private site)`
    )
  })

/** Warns of every other nginx site (sites-enabled/, conf.d/*.conf) on port 80: it gets the clients' first try, secret included. */
export const warnPlainHttpSites = (nginxDir: string, ours: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const others: Array<{ readonly name: string; readonly text: string }> = []
    for (const [dir, suffix] of [["sites-enabled", ""], ["conf.d", ".conf"]] as const) {
      const names = yield* fs.readDirectory(path.join(nginxDir, dir)).pipe(Effect.orElseSucceed(() => []))
      for (const name of names.filter((n) => n.endsWith(suffix)).sort()) {
        const file = path.join(nginxDir, dir, name)
        const text = file === ours ? Option.none() : yield* fs.readFileString(file).pipe(Effect.option)
        if (Option.isSome(text)) others.push({ name: file, text: text.value })
      }
    }
    for (const name of plainHttpSites(others)) {
      yield* Effect.logWarning(`${name} listens on port 80: clients send their first try for image files there, with the secret, in clear; disable it, or nothing private is private`)
    }
  })
