/**
 * What a private server adds to the nginx site, pure. The path form: `location /<token>/` rewrites to the
 * path without the token, and the locations that serve files are `internal` (reached only through that
 * rewrite), so a guessed `/images/…` is 404. Basic: `auth_basic` over the whole server, so anything without
 * a valid user is 401. Both: the realm comes from a `map` of the request as sent, `off` when it starts with
 * the token. No plain-HTTP server either way (renderSite leaves it out): clients try image files over HTTP
 * first, on the remote URL's host and port, and would send the token or the password there in clear.
 */
import { type AccessForm, realm, takesPassword, takesToken } from "./PrivateAccess.js"

export interface PrivateSite {
  readonly form: AccessForm
  readonly token: string | undefined
  readonly htpasswd: string | undefined
}

export interface SiteParts {
  /** Comment lines after the first: the access marker, and why. */
  readonly header: string
  /** http-level blocks before the server (the map of `both`). */
  readonly before: string
  /** Lines inside the server, before its locations. */
  readonly server: string
  /** A line inside each location that serves files. */
  readonly inner: string
}

/** The variable `both` takes the realm from (http-level, so named for this site alone). */
const realmVariable = "$lxd_image_server_realm"

const markerPrefix = "# lxd-image-server access: "

export const privateSiteParts = (p: PrivateSite | undefined): SiteParts => {
  if (p === undefined) return { header: "", before: "", server: "", inner: "" }
  const token = takesToken(p.form) ? p.token : undefined
  const header = `${markerPrefix}${p.form}
# A private server: clients must present the secret${token === undefined ? "" : " (this file holds the token: keep it 0640)"}.
# No plain-HTTP server: clients try image files over HTTP first and would send the secret there in clear.
`
  const before =
    p.form === "both"
      ? `# with the token, no password is asked for
map $request_uri ${realmVariable} {
    ~^/${token}/ off;
    default "${realm}";
}

`
      : ""
  const auth = takesPassword(p.form)
    ? `
    auth_basic ${p.form === "both" ? realmVariable : `"${realm}"`};
    auth_basic_user_file ${p.htpasswd};
`
    : ""
  const tokenLocations =
    token === undefined
      ? ""
      : `
    # the token: /${token}/… is served as /…
    location = /${token} {
        return 301 /${token}/;
    }

    location /${token}/ {
        rewrite ^/${token}(/.*)$ $1 last;
    }
`
  return { header, before, server: `${auth}${tokenLocations}`, inner: p.form === "path" ? "\n        internal;" : "" }
}

/** The access a site file was written for: its marker line, or public when it has none. */
export const siteAccessOf = (text: string): AccessForm | "public" => {
  const line = text.split("\n").find((l) => l.startsWith(markerPrefix))
  const form = line?.slice(markerPrefix.length).trim()
  return form === "path" || form === "basic" || form === "both" ? form : "public"
}

/**
 * Why an existing site file does not serve what is asked (`init` keeps it, so a site left public while the
 * server was made private, or one holding an older token, must stop `init`), or undefined when it does.
 */
export const siteMismatch = (text: string, wanted: PrivateSite | undefined): string | undefined => {
  const has = siteAccessOf(text)
  const want = wanted?.form ?? "public"
  if (has !== want) return `it was written for ${has === "public" ? "public" : `private (${has})`} access, not ${want === "public" ? "public" : `private (${want})`}`
  if (wanted !== undefined && takesToken(wanted.form) && !text.includes(`location /${wanted.token}/ {`)) return "it holds another token than the token file"
  if (wanted !== undefined && takesPassword(wanted.form) && !text.includes(`auth_basic_user_file ${wanted.htpasswd};`)) {
    return "it names another htpasswd file"
  }
  return undefined
}

/** A `listen` on port 80 (`listen 80`, `listen [::]:80 default_server`, `listen 0.0.0.0:80`). */
const listens80 = /(?:^|[{;])\s*listen\s+(?:\S*:)?80[\s;]/m

/** The names of the sites that listen on port 80, of other nginx config files. */
export const plainHttpSites = (files: ReadonlyArray<{ readonly name: string; readonly text: string }>): ReadonlyArray<string> =>
  files.filter((f) => listens80.test(f.text)).map((f) => f.name)
