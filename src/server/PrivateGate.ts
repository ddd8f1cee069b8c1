/**
 * The private server's gate in front of `serve`'s static app: a request without the secret is answered here
 * (404 for the path form alone, 401 with a challenge when basic auth is on) and never reaches a file; one with
 * it reaches the app with the token taken off its path. A small layer of its own, so that routes that need no
 * secret (health, metrics) can sit beside it instead of behind it.
 *
 * Passwords are checked against the htpasswd file by recomputing the stored hash with `openssl passwd` and
 * the stored salt (node:crypto has no sha-crypt or apr1); each answer is kept per Authorization header (by its
 * sha256), so a client pays for one openssl run, not one a request. The file is read again when it changes
 * (nginx reads it at every request too): a user taken out of it is refused from the next request on.
 */
import { CommandExecutor, FileSystem, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { HttpApp } from "@effect/platform"
import { createHash } from "node:crypto"
import { Effect, Either, Option } from "effect"
import { challenge, type Credentials, decide, type GateRules, type HtpasswdEntry, parseHtpasswd, passwordCheckable } from "./PrivateAccess.js"
import { passwordMatches } from "./PrivateSecrets.js"

/** Checks a user's password; `key` names the credentials for the cache (the header they came in). */
export interface PasswordCheck {
  readonly check: (credentials: Credentials, key: string) => Effect.Effect<boolean>
}

/** How many answers are kept: a client sends one header all along, so this is room for many clients. */
const cacheSize = 1024

/**
 * The password check of an htpasswd file (read and checked at start by the caller, see readHtpasswd). When the
 * file changes it is read again; a file that turned unreadable or bad lets nobody in until it is mended, with
 * one error logged.
 */
export const makePasswordCheck = (file: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const context = yield* Effect.context<CommandExecutor.CommandExecutor>()
    let stamp = ""
    let users: ReadonlyMap<string, HtpasswdEntry> = new Map()
    const answers = new Map<string, boolean>()
    // one openssl at a time: a flood of made-up passwords costs one process at a time, not a fork bomb
    const openssl = yield* Effect.makeSemaphore(1)

    const current = Effect.gen(function* () {
      const info = yield* fs.stat(file).pipe(Effect.either)
      const now = Either.isLeft(info)
        ? "missing"
        : `${Option.getOrElse(info.right.ino, () => 0)}:${info.right.size}:${Option.match(info.right.mtime, { onNone: () => 0, onSome: (d) => d.getTime() })}`
      if (now === stamp) return users
      stamp = now
      answers.clear()
      const text = Either.isLeft(info) ? Either.left(info.left) : yield* fs.readFileString(file).pipe(Effect.either)
      const parsed = Either.isLeft(text) ? Either.left({ line: undefined, reason: text.left.message }) : parseHtpasswd(text.right)
      if (Either.isLeft(parsed)) {
        yield* Effect.logError(`${file}: ${parsed.left.line === undefined ? "" : `line ${parsed.left.line}: `}${parsed.left.reason}; no password is accepted until it is mended`)
        users = new Map()
      } else {
        users = new Map(parsed.right.map((e) => [e.user, e]))
        yield* Effect.logInfo(`read ${file}: ${users.size} user${users.size === 1 ? "" : "s"}`)
      }
      return users
    })

    const check = (credentials: Credentials, key: string): Effect.Effect<boolean> =>
      Effect.gen(function* () {
        const entry = (yield* current).get(credentials.user)
        if (entry === undefined || !passwordCheckable(credentials.password)) return false
        const id = createHash("sha256").update(key).digest("base64")
        const known = answers.get(id)
        if (known !== undefined) return known
        const matches = yield* openssl.withPermits(1)(passwordMatches(entry, credentials.password)).pipe(
          Effect.provide(context),
          Effect.catchAll((e) => Effect.as(Effect.logError(`cannot check a password with openssl: ${e.message}`), undefined))
        )
        // an openssl that could not run is no answer to remember
        if (matches === undefined) return false
        if (!matches) yield* Effect.logWarning(`wrong password for user ${credentials.user}`)
        if (answers.size >= cacheSize) answers.delete(answers.keys().next().value!)
        answers.set(id, matches)
        return matches
      })
    return { check } satisfies PasswordCheck
  })

const notFound = HttpServerResponse.text("not found\n", { status: 404 })
const unauthorized = HttpServerResponse.text("unauthorized\n", { status: 401, headers: { "www-authenticate": challenge } })

/** `app` behind the secret: see PrivateAccess.decide for what is answered without it. */
export const guard =
  (rules: GateRules, passwords: PasswordCheck | undefined) =>
  <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const decision = decide(rules, request.url, request.headers["authorization"])
      const serve = (path: string) => Effect.provideService(app, HttpServerRequest.HttpServerRequest, request.modify({ url: path }))
      switch (decision._tag) {
        case "Pass":
          return yield* serve(decision.path)
        case "Check":
          return passwords !== undefined && (yield* passwords.check(decision.credentials, request.headers["authorization"]!))
            ? yield* serve(decision.path)
            : unauthorized
        case "Redirect":
          return HttpServerResponse.empty({ status: 301, headers: { location: decision.location } })
        case "Challenge":
          return unauthorized
        case "NotFound":
          return notFound
      }
    })
