/**
 * The rules of a private server, pure: which forms of secret it takes (a path prefix, HTTP basic auth, or
 * either), what a token and a user name may hold, how an `Authorization` header and an htpasswd file read,
 * what a request is answered before any file is looked at, and the URL clients add. The effects (files,
 * openssl) are in PrivateSecrets, the HTTP wrapper in PrivateGate.
 */
import { timingSafeEqual } from "node:crypto"
import { Either } from "effect"

/**
 * `path`: the remote URL is `https://host/<token>`; `basic`: `https://user:password@host`; `both`: either works.
 * Both clients take both (SIMPLESTREAMS.md §1.1, §1.2).
 */
export type AccessForm = "path" | "basic" | "both"
export const accessForms: ReadonlyArray<AccessForm> = ["path", "basic", "both"]

export const takesToken = (form: AccessForm): boolean => form !== "basic"
export const takesPassword = (form: AccessForm): boolean => form !== "path"

/** The realm nginx and `serve` name in their challenge. */
export const realm = "lxd-image-server"
export const challenge = `Basic realm="${realm}", charset="UTF-8"`

/**
 * A token is one path segment that needs no escaping anywhere it goes (a URL, an nginx `location`, a regex, a
 * shell word): the base64url alphabet, which is what `init` makes. At least 16 characters (96 bits): shorter
 * is guessable.
 */
export const tokenRule = "at least 16 characters, each A-Z a-z 0-9 _ or -"
export const minTokenLength = 16

/** Why a token cannot be used, or undefined when it can. */
export const tokenProblem = (token: string): string | undefined => {
  const bad = [...token].find((c) => !/[A-Za-z0-9_-]/.test(c))
  if (bad !== undefined) return `'${bad === "\n" ? "\\n" : bad}' is not allowed in a token (${tokenRule})`
  if (token.length < minTokenLength) return `the token has ${token.length} characters (${tokenRule})`
  return undefined
}

/** The token a token file holds: its text without the final newline (and blanks around it). */
export const tokenOfFile = (text: string): string => text.trim()

/** User names go into URLs and the htpasswd file unescaped: no `:`, `@`, `/`, blank or anything a shell reads. */
export const userRule = "1 to 64 characters, each A-Z a-z 0-9 . _ or -"
export const userProblem = (user: string): string | undefined =>
  /^[A-Za-z0-9._-]{1,64}$/.test(user) ? undefined : `'${user}' is not a usable user name (${userRule})`

export interface Credentials {
  readonly user: string
  readonly password: string
}

/** The user and password of an `Authorization: Basic …` header, or undefined for anything else. */
export const parseBasicAuthorization = (header: string | undefined): Credentials | undefined => {
  const m = header === undefined ? null : /^\s*basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header)
  if (m === null) return undefined
  const bytes = Buffer.from(m[1]!, "base64")
  const decoded = bytes.toString("utf8")
  // bytes that are not UTF-8 would reach openssl as U+FFFD: two passwords could then look alike
  if (!Buffer.from(decoded, "utf8").equals(bytes)) return undefined
  const colon = decoded.indexOf(":")
  if (colon <= 0) return undefined
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

/**
 * Whether openssl can check the password: it reads one line of at most 256 bytes from stdin, so a newline or
 * NUL would cut the password short, and so would more bytes; such a password is refused without a check.
 */
export const passwordCheckable = (password: string): boolean =>
  password.length > 0 && !/[\n\0]/.test(password) && Buffer.byteLength(password, "utf8") <= 256

/** A password scheme `openssl passwd` computes, as its flag: `-apr1`, `-1`, `-5`, `-6`. */
export type HashScheme = "apr1" | "1" | "5" | "6"

export interface HtpasswdEntry {
  readonly user: string
  /** The whole stored hash, `$6$salt$…`. */
  readonly hash: string
  readonly scheme: HashScheme
  /** What `openssl passwd -salt` takes to compute the same hash: the salt, with `rounds=N$` before it when given. */
  readonly salt: string
  readonly line: number
}

export interface HtpasswdProblem {
  readonly line: number | undefined
  readonly reason: string
}

const schemeNames: ReadonlyArray<readonly [RegExp, string]> = [
  [/^\$2[abxy]?\$/, "bcrypt"],
  [/^\$y\$/, "yescrypt"],
  [/^\{SHA\}/, "{SHA}"],
  [/^\{SSHA\}/, "{SSHA}"],
  [/^\{PLAIN\}/, "{PLAIN}"]
]

/** The scheme and salt of a stored hash, or why it is not one `serve` can check. */
export const hashParts = (hash: string): Either.Either<{ readonly scheme: HashScheme; readonly salt: string }, string> => {
  const m = /^\$(apr1|1|5|6)\$((?:rounds=\d+\$)?[./0-9A-Za-z]{1,16})\$[./0-9A-Za-z]+$/.exec(hash)
  if (m !== null) return Either.right({ scheme: m[1] as HashScheme, salt: m[2]! })
  const known = schemeNames.find(([re]) => re.test(hash))?.[1]
  return Either.left(
    `${known === undefined ? "not a password hash serve can check" : `${known} hashes are not supported`} (make one with \`openssl passwd -6\`, or -5, -apr1)`
  )
}

/**
 * An htpasswd file as nginx reads it (`user:hash` a line; blank lines and `#` comments skipped), limited to the
 * hashes `openssl passwd` makes (sha512-crypt, sha256-crypt, md5-crypt, apr1), which nginx checks with the
 * system's crypt() and `serve` with openssl. A line in another form, a user named twice or a file with no user
 * is refused whole, with the line: a file that works for nginx and not for `serve`, or half of it, is worse.
 */
export const parseHtpasswd = (text: string): Either.Either<ReadonlyArray<HtpasswdEntry>, HtpasswdProblem> => {
  const entries: Array<HtpasswdEntry> = []
  const lines = text.split("\n")
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, "")
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue
    const colon = line.indexOf(":")
    if (colon <= 0) return Either.left({ line: i + 1, reason: "not a user:hash line" })
    const user = line.slice(0, colon)
    // nginx reads the hash up to the end of the line or the next ':' (Apache's extra fields)
    const hash = line.slice(colon + 1).split(":")[0]!
    const parts = hashParts(hash)
    if (Either.isLeft(parts)) return Either.left({ line: i + 1, reason: `user ${user}: ${parts.left}` })
    const twice = entries.find((e) => e.user === user)
    if (twice !== undefined) return Either.left({ line: i + 1, reason: `user ${user} is already on line ${twice.line}` })
    entries.push({ user, hash, ...parts.right, line: i + 1 })
  }
  if (entries.length === 0) return Either.left({ line: undefined, reason: "no user in it" })
  return Either.right(entries)
}

/** A line of an htpasswd file. */
export const htpasswdLine = (user: string, hash: string): string => `${user}:${hash}\n`

/** Equal strings, in a time that does not tell how much of them matched. */
export const sameSecret = (a: string, b: string): boolean => {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** What a private server needs to decide on a request: the token when the path form is on, and whether basic is. */
export interface GateRules {
  readonly token: string | undefined
  readonly basic: boolean
}

export const gateRules = (form: AccessForm, token: string | undefined): GateRules => ({
  token: takesToken(form) ? token : undefined,
  basic: takesPassword(form)
})

/**
 * What to do with a request before any file is looked at:
 * - `Pass`: serve `path` (the request's path without the token);
 * - `Check`: serve `path` if the password is the user's;
 * - `Redirect`: `/<token>` alone goes to `/<token>/`, where the catalog page is;
 * - `Challenge`: 401 with `WWW-Authenticate` (basic is on, and no usable credentials came);
 * - `NotFound`: 404, as for a file that does not exist (the path form alone: nothing tells a guesser more).
 */
export type GateDecision =
  | { readonly _tag: "Pass"; readonly path: string }
  | { readonly _tag: "Check"; readonly path: string; readonly credentials: Credentials }
  | { readonly _tag: "Redirect"; readonly location: string }
  | { readonly _tag: "Challenge" }
  | { readonly _tag: "NotFound" }

/** `pathAndQuery` is the request target as sent (`/<token>/streams/v1/index.json?x`), not decoded. */
export const decide = (rules: GateRules, pathAndQuery: string, authorization: string | undefined): GateDecision => {
  if (rules.token !== undefined) {
    const query = pathAndQuery.indexOf("?")
    const path = query === -1 ? pathAndQuery : pathAndQuery.slice(0, query)
    const slash = path.indexOf("/", 1)
    const first = path.slice(1, slash === -1 ? undefined : slash)
    if (path.startsWith("/") && sameSecret(first, rules.token)) {
      return slash === -1 ? { _tag: "Redirect", location: `/${rules.token}/` } : { _tag: "Pass", path: pathAndQuery.slice(slash) }
    }
  }
  if (!rules.basic) return { _tag: "NotFound" }
  const credentials = parseBasicAuthorization(authorization)
  return credentials === undefined ? { _tag: "Challenge" } : { _tag: "Check", path: pathAndQuery, credentials }
}

/** The remote URL with the token as its last path segment: `https://host[:port][/sub]/<token>`. */
export const tokenUrl = (base: string, token: string): string => `${base.replace(/\/+$/, "")}/${token}`

/** The remote URL with credentials in it: `https://user:password@host…` (the password escaped for a URL). */
export const passwordUrl = (base: string, user: string, password: string): string =>
  base.replace(/^https:\/\//, `https://${encodeURIComponent(user)}:${encodeURIComponent(password)}@`)

/**
 * The remote URL the catalog page shows, and what it says about it. The page lies in the web root, where any
 * local user (and every mirror) can read it, and it is the same for every visitor: it never holds a password,
 * only USER:PASSWORD to replace. The token it does hold when the path form is the only one, since everyone who
 * can see the page has it already; with basic auth on, the token stays off the page, so that a user taken
 * out of the htpasswd file is not left holding it.
 */
export const pageRemote = (base: string, form: AccessForm, token: string | undefined): { readonly url: string; readonly note?: string } =>
  takesPassword(form)
    ? {
        url: passwordUrl(base, "USER", "PASSWORD"),
        note: `A private server: put your user name and password in place of USER and PASSWORD (this page does not show them)${form === "both" ? ", or add the URL with the token you were given" : ""}.`
      }
    : token === undefined
      ? { url: tokenUrl(base, "TOKEN"), note: "A private server: put the token you were given in place of TOKEN." }
      : { url: tokenUrl(base, token) }
