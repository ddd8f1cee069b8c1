/**
 * The secrets of a private server, on disk: the path token, the htpasswd file nginx and `serve` check passwords
 * against, and the password `init` made, kept so that `init` and `serve` can print the remote's URL again.
 * Made from node's CSPRNG (crypto.randomBytes), hashed with the host's `openssl passwd -6` (sha512-crypt,
 * which nginx checks with the system's crypt()); never overwritten; mode 0640, owner root:www-data when run
 * as root (nginx's workers read the htpasswd file at each request), the kept password 0600.
 */
import { Command, CommandExecutor, FileSystem, Path } from "@effect/platform"
import { randomBytes } from "node:crypto"
import { Data, Effect, Either, Option } from "effect"
import {
  type Credentials,
  type HashScheme,
  type HtpasswdEntry,
  htpasswdLine,
  parseHtpasswd,
  sameSecret,
  tokenOfFile,
  tokenProblem
} from "./PrivateAccess.js"

/** A secrets file that cannot be made or used: the path and why, in one line. */
export class PrivateSecretsError extends Data.TaggedError("PrivateSecretsError")<{ readonly path: string; readonly reason: string }> {
  override get message() {
    return `${this.path}: ${this.reason}`
  }
}

/** 24 random bytes: a 32-character base64url token (192 bits). */
export const newToken = (): string => randomBytes(24).toString("base64url")
/** 18 random bytes: a 24-character base64url password (144 bits), safe in a URL and a shell word as it is. */
export const newPassword = (): string => randomBytes(18).toString("base64url")

/** Where the password `init` made is kept: beside the htpasswd file. */
export const keptPasswordPath = (htpasswdPath: string): string => `${htpasswdPath}.password`

/** The group that may read the secrets: nginx's workers run as www-data, and the upload user is in it. */
export const secretsGroup = "www-data"

/** A failed read in a few words: "no such file", "cannot read it: permission denied", "cannot read it: EISDIR: …". */
const describe = (e: { readonly message: string; readonly _tag?: string; readonly reason?: unknown }): string =>
  e._tag === "SystemError" && e.reason === "NotFound"
    ? "no such file"
    : e._tag === "SystemError" && e.reason === "PermissionDenied"
      ? "cannot read it: permission denied"
      : `cannot read it: ${e.message.includes("): ") ? e.message.slice(e.message.lastIndexOf("): ") + 3) : e.message}`

/** www-data's gid, when that group exists. */
const groupId = (name: string) =>
  Effect.gen(function* () {
    const executor = yield* CommandExecutor.CommandExecutor
    const line = yield* executor.string(Command.make("getent", "group", name)).pipe(Effect.orElseSucceed(() => ""))
    const gid = Number(line.split(":")[2])
    return Number.isInteger(gid) && line.startsWith(`${name}:`) ? Option.some(gid) : Option.none<number>()
  })

/**
 * Writes a new file and never replaces one: the bytes go to a temp file in the same folder, which gets its mode
 * (and, as root, root:www-data) before link(2) puts it in place; link fails when the name is taken, so two
 * runs at once cannot overwrite each other, and a crash never leaves a half-written secret under the name.
 */
const writeNewFile = (target: string, text: string, mode: number, group: boolean) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const fail = (reason: string) => new PrivateSecretsError({ path: target, reason })
    const dir = path.dirname(target)
    yield* fs.makeDirectory(dir, { recursive: true, mode: 0o755 }).pipe(Effect.mapError((e) => fail(`cannot make ${dir}: ${e.message}`)))
    const tmp = path.join(dir, `.${path.basename(target)}.${randomBytes(6).toString("hex")}.tmp`)
    const gid = group && process.getuid?.() === 0 ? yield* groupId(secretsGroup) : Option.none<number>()
    yield* Effect.scoped(
      Effect.gen(function* () {
        const file = yield* fs.open(tmp, { flag: "wx", mode })
        yield* file.writeAll(new TextEncoder().encode(text))
        yield* file.sync
      })
    ).pipe(
      Effect.zipRight(fs.chmod(tmp, mode)),
      Effect.zipRight(Option.match(gid, { onNone: () => Effect.void, onSome: (g) => fs.chown(tmp, 0, g) })),
      Effect.zipRight(fs.link(tmp, target)),
      Effect.ensuring(Effect.ignore(fs.remove(tmp))),
      Effect.mapError((e) => fail(`cannot write it: ${e.message}`))
    )
  })

/** The token in the file, checked. */
export const readToken = (file: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(file).pipe(Effect.mapError((e) => new PrivateSecretsError({ path: file, reason: describe(e) })))
    const token = tokenOfFile(text)
    const problem = tokenProblem(token)
    if (problem !== undefined) return yield* new PrivateSecretsError({ path: file, reason: problem })
    return token
  })

/** A new token in a new file (never over one). */
export const makeToken = (file: string) =>
  Effect.gen(function* () {
    const token = newToken()
    yield* writeNewFile(file, `${token}\n`, 0o640, true)
    return token
  })

/** The users of an htpasswd file, checked (see parseHtpasswd). */
export const readHtpasswd = (file: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(file).pipe(Effect.mapError((e) => new PrivateSecretsError({ path: file, reason: describe(e) })))
    return yield* Either.mapLeft(
      parseHtpasswd(text),
      (p) => new PrivateSecretsError({ path: file, reason: `${p.line === undefined ? "" : `line ${p.line}: `}${p.reason}` })
    )
  })

/**
 * `openssl passwd -<scheme> [-salt S] -stdin` of one password: the password goes on stdin, never on a command
 * line another user can read in ps. openssl reads one line of at most 256 bytes, so a password with a newline
 * or NUL, or a longer one, is never given to it (PrivateAccess.passwordCheckable).
 */
export const opensslPasswd = (password: string, scheme: HashScheme, salt?: string) =>
  Effect.gen(function* () {
    const executor = yield* CommandExecutor.CommandExecutor
    const args = ["passwd", `-${scheme}`, ...(salt === undefined ? [] : ["-salt", salt]), "-stdin"]
    const out = yield* executor.string(Command.make("openssl", ...args).pipe(Command.feed(`${password}\n`), Command.stderr("pipe")))
    const hash = out.trim()
    if (!hash.startsWith("$")) return yield* Effect.fail(new Error(`openssl passwd -${scheme} printed no hash`))
    return hash
  })

/** Whether the password is the one the entry's hash was made from: the same hash, recomputed with its salt. */
export const passwordMatches = (entry: HtpasswdEntry, password: string) =>
  Effect.map(opensslPasswd(password, entry.scheme, entry.salt), (hash) => sameSecret(hash, entry.hash))

/** The password `init` kept (`user:password`), when the file is there and readable. */
export const readKeptPassword = (htpasswdPath: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(keptPasswordPath(htpasswdPath)).pipe(Effect.option)
    if (Option.isNone(text)) return Option.none<Credentials>()
    const line = text.value.trim()
    const colon = line.indexOf(":")
    return colon > 0 ? Option.some({ user: line.slice(0, colon), password: line.slice(colon + 1) }) : Option.none<Credentials>()
  })

/**
 * A new htpasswd file (never over one) with `user` and a random password, hashed with `openssl passwd -6`, and
 * that password kept beside it (mode 0600) for the printout. Returns its users.
 */
export const makeHtpasswd = (file: string, user: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const password = newPassword()
    const hash = yield* opensslPasswd(password, "6").pipe(
      Effect.mapError((e) => new PrivateSecretsError({ path: file, reason: `cannot hash the password with openssl: ${e.message}` }))
    )
    // the kept password first: a run that stops in between leaves no user whose password nobody knows. One
    // left from an htpasswd file since removed belongs to no user any more
    yield* fs.remove(keptPasswordPath(file), { force: true }).pipe(Effect.ignore)
    yield* writeNewFile(keptPasswordPath(file), `${user}:${password}\n`, 0o600, false)
    yield* writeNewFile(file, htpasswdLine(user, hash), 0o640, true)
    return yield* readHtpasswd(file)
  })
