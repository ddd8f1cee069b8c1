/**
 * The rules of the embedded static server, pure: which request path maps to which file under the root, what
 * a Range header asks for, and what a failed open answers. Anything that is not plainly a file below `images/`
 * or `streams/`, or the catalog page at `/`, is refused.
 */
import { posix } from "node:path"

/**
 * The two trees clients fetch, as in the nginx site. The rest of the root is not for them: `--ssl-dir` may lie
 * under it (the private key), and so may notes, state or anything else an operator keeps beside the images.
 */
const servedTrees: ReadonlySet<string> = new Set(["images", "streams"])

/** The catalog page, the one file served from the root itself (at `/` and `/index.html`). */
export const pagePath = "index.html"

/**
 * Whether a path relative to the root ("/"-separated, decoded) may be served: the catalog page, or a file below
 * `images/` or `streams/`, with no ".." and nothing hidden (uploads in progress, rsync temporaries, the writer
 * lock). Applied to what a request asks for and again to where the opened file really is.
 */
export const isServedPath = (rel: string): boolean => {
  const segments = rel.split("/").filter((s) => s !== "")
  if (segments.length === 1 && segments[0] === pagePath) return true
  return segments.length >= 2 && servedTrees.has(segments[0]!) && !segments.some((s) => s === ".." || s.startsWith("."))
}

/** The path below the root a request asks for, or undefined when it must be refused (see isServedPath; NUL, backslashes). */
export const requestedPath = (urlPath: string): string | undefined => {
  let decoded: string
  try {
    decoded = decodeURIComponent(urlPath.split("?")[0]!)
  } catch {
    return undefined
  }
  if (!decoded.startsWith("/") || decoded.includes("\0") || decoded.includes("\\")) return undefined
  const segments = decoded.split("/").filter((s) => s !== "")
  if (decoded === "/") return pagePath
  return isServedPath(segments.join("/")) ? posix.join(...segments) : undefined
}

/**
 * The status for a file that could not be opened or examined, by errno code. Only absence is 404 (ENAMETOOLONG
 * too: the client made the name up). A full fd table is the server's passing trouble: 503, so that clients and
 * caches do not take a missing catalog for the truth. Anything else (EIO, EACCES, a symlink loop) is 500.
 */
export const openFailureStatus = (code: string | undefined): 404 | 500 | 503 => {
  switch (code) {
    case "ENOENT":
    case "ENOTDIR":
    case "ENAMETOOLONG":
      return 404
    case "EMFILE":
    case "ENFILE":
    case "EAGAIN":
      return 503
    default:
      return 500
  }
}

export type RangeAnswer =
  | { readonly _tag: "Whole" }
  | { readonly _tag: "Part"; readonly start: number; readonly end: number }
  | { readonly _tag: "Unsatisfiable" }

/** One `bytes=` range (the clients send none; other tools and CDNs do); several ranges get the whole file. */
export const parseRange = (header: string | undefined, size: number): RangeAnswer => {
  if (header === undefined) return { _tag: "Whole" }
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (!m || (m[1] === "" && m[2] === "")) return { _tag: "Whole" }
  let start: number
  let end: number
  if (m[1] === "") {
    const suffix = Number(m[2])
    if (suffix === 0) return { _tag: "Unsatisfiable" }
    start = Math.max(0, size - suffix)
    end = size - 1
  } else {
    start = Number(m[1])
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1)
  }
  if (start >= size || start > end) return { _tag: "Unsatisfiable" }
  return { _tag: "Part", start, end }
}

const types: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".json": "application/json",
  ".xz": "application/x-xz",
  ".gz": "application/gzip",
  ".squashfs": "application/octet-stream",
  ".qcow2": "application/octet-stream",
  ".img": "application/octet-stream"
}

export const contentType = (file: string): string => types[posix.extname(file)] ?? "application/octet-stream"
