/**
 * What a push to a mirror does, as plain values: the files of the catalog, the ssh command, and the rsync runs in
 * the one order that never lets a client of the mirror see a catalog naming a missing or partial file:
 *   1. the catalog's image files, each renamed into place only once whole (`--delay-updates`);
 *   2. index.json without the products leaving (only when some leave), so that the index never names a product
 *      the new images.json lacks;
 *   3. images.json (with the catalog page, index.html, when the primary has one), then 4. index.json, each
 *      written by rsync to a temp name and renamed;
 *   5. deletions: files on the mirror that are neither on the primary nor in the catalog just pushed, so a
 *      withdrawn version's files leave a mirror only once they left the primary (after its grace period).
 * Only the catalog's files are sent (`--files-from`): hidden staging folders and refused versions never leave
 * the primary.
 */
import { pageFileName } from "../page/PageWriter.js"
import type { Images } from "../simplestreams/Streams.js"
import type { MirrorTarget } from "./MirrorConfig.js"

/** Every item path of the catalog (relative to the web root), once each, sorted. */
export const catalogFiles = (images: Images): ReadonlyArray<string> => {
  const paths = new Set<string>()
  for (const product of Object.values(images.products)) {
    for (const version of Object.values(product.versions)) {
      for (const item of Object.values(version.items)) paths.add(item.path)
    }
  }
  return [...paths].sort()
}

/** An argument as rsync's `-e` splits it: on spaces, with quotes keeping an argument whole. */
const rshWord = (arg: string) => (/^[A-Za-z0-9_.,:=/@%+-]+$/.test(arg) ? arg : arg.includes("'") ? `"${arg}"` : `'${arg}'`)

/**
 * The ssh command line for a mirror: keys pinned in its known_hosts unless it accepts new ones; never a prompt.
 * With a control path, the steps of one push share one connection (one handshake, one login, not five).
 */
export const sshArgs = (m: MirrorTarget, controlPath?: string): ReadonlyArray<string> => [
  "ssh",
  ...(controlPath === undefined ? [] : ["-o", "ControlMaster=auto", "-o", `ControlPath=${controlPath}`, "-o", "ControlPersist=60"]),
  "-p", String(m.port),
  ...(m.keyPath === undefined ? [] : ["-i", m.keyPath, "-o", "IdentitiesOnly=yes"]),
  "-o", "BatchMode=yes",
  "-o", `StrictHostKeyChecking=${m.acceptNewHostKey ? "accept-new" : "yes"}`,
  "-o", `UserKnownHostsFile=${m.knownHosts}`,
  "-o", "ConnectTimeout=10",
  "-o", "ServerAliveInterval=10",
  "-o", "ServerAliveCountMax=3"
]

export const rshCommand = (m: MirrorTarget, controlPath?: string): string => sshArgs(m, controlPath).map(rshWord).join(" ")

/** Closes the shared connection of a push (ssh -O exit). */
export const closeControlArgs = (m: MirrorTarget, controlPath: string): ReadonlyArray<string> => [
  ...sshArgs(m, controlPath).slice(1), "-O", "exit", `${m.user}@${m.host}`
]

/** `a/b` + `c` on the mirror, whose paths are always POSIX; `"/"` (rrsync's root) stays a root. */
export const remoteJoin = (root: string, rel: string): string => `${root.replace(/\/+$/, "")}/${rel.replace(/^\/+/, "")}`

const destination = (m: MirrorTarget, remotePath: string) =>
  `${m.user}@${m.host.includes(":") ? `[${m.host}]` : m.host}:${remotePath}`

/** An rsync filter rule matching this path exactly: wildcard characters escaped. */
const exactPattern = (rel: string) => rel.replace(/[[*?\\]/g, "\\$&")

/** The protect rules of the deletion step: the catalog's files, relative to the images folder, anchored. */
export const protectRules = (files: ReadonlyArray<string>, imagesPath: string): string => {
  const prefix = `${imagesPath.replace(/\/+$/, "")}/`
  return files
    .filter((f) => f.startsWith(prefix))
    .map((f) => `P /${exactPattern(f.slice(prefix.length))}\n`)
    .join("")
}

/** The local files a push works from: a snapshot of the catalog taken under the writer lock. */
export interface PushSources {
  /** The primary's web root (item paths are relative to it). */
  readonly webRoot: string
  /** The images folder relative to the web root (`images`). */
  readonly imagesPath: string
  /** The streams folder relative to the web root (`streams/v1`). */
  readonly streamsPath: string
  /** A folder holding `<streamsPath>/images.json` and `<streamsPath>/index.json` as they were snapshotted. */
  readonly snapshotRoot: string
  /** A folder holding `<streamsPath>/index.json` without the products leaving, when some leave. */
  readonly narrowedIndexRoot: string | undefined
  /** The catalog's files, NUL-separated, relative to the web root. */
  readonly filesList: string
  /** The protect rules of the deletion step. */
  readonly protectFile: string
  /** The socket of the connection the steps share, if they share one. */
  readonly controlPath: string | undefined
  /** Whether `snapshotRoot` holds the catalog page (index.html) to send with images.json. */
  readonly page: boolean
}

export interface PushStep {
  readonly what: string
  readonly args: ReadonlyArray<string>
}

/** The rsync runs of one push, in order. Pure. */
export const pushSteps = (m: MirrorTarget, s: PushSources): ReadonlyArray<PushStep> => {
  // no -z: images are compressed already; modes made readable for the mirror's web server whatever the umask
  const common = ["--timeout=60", "-e", rshCommand(m, s.controlPath), "--times", "--perms", "--chmod=D755,F644"]
  const root = destination(m, `${m.rootDir.replace(/\/+$/, "")}/`)
  // files under `from`, each to the same path under the mirror's root
  const relative = (from: string, ...rels: ReadonlyArray<string>) => ["--relative", ...rels.map((rel) => `${from.replace(/\/+$/, "")}/./${rel}`), root]
  const streamsFile = (from: string, name: string) => relative(from, `${s.streamsPath}/${name}`)
  return [
    { what: "image files", args: [...common, "--from0", `--files-from=${s.filesList}`, "--delay-updates", `${s.webRoot.replace(/\/+$/, "")}/`, root] },
    ...(s.narrowedIndexRoot === undefined ? [] : [{ what: "index.json without the products leaving", args: [...common, ...streamsFile(s.narrowedIndexRoot, "index.json")] }]),
    s.page
      ? { what: "images.json and the catalog page", args: [...common, ...relative(s.snapshotRoot, pageFileName, `${s.streamsPath}/images.json`)] }
      : { what: "images.json", args: [...common, ...streamsFile(s.snapshotRoot, "images.json")] },
    { what: "index.json", args: [...common, ...streamsFile(s.snapshotRoot, "index.json")] },
    {
      what: "deletion of files gone from the primary and the catalog",
      args: [
        ...common, "--recursive", "--delete", "--existing", "--ignore-existing", `--filter=merge ${s.protectFile}`,
        `${s.webRoot.replace(/\/+$/, "")}/${s.imagesPath}/`, destination(m, `${remoteJoin(m.rootDir, s.imagesPath)}/`)
      ]
    }
  ]
}

/** The products an index leaving `before` for `after` must drop first, if any. Pure. */
export const leavingProducts = (before: ReadonlyArray<string>, after: ReadonlyArray<string>): ReadonlyArray<string> => {
  const staying = new Set(after)
  return before.filter((p) => !staying.has(p))
}
