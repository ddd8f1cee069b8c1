/** Runs `lxd-image-server watch` as a real child process on a temp tree, and reads what it publishes. */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { binPath } from "./Bin.js"
import type { WebRoot } from "./Tree.js"

export interface WatchProcess {
  readonly child: ChildProcess
  /** Everything it wrote to stderr so far. */
  readonly log: () => string
  readonly exited: Promise<number | null>
  readonly stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

export interface WatchStart {
  /** Seconds; default 0.5. */
  readonly settle?: string
  /** The config file; default one that does not exist. */
  readonly config?: string
  /** Seconds between full reconciles; default the service's. */
  readonly reconcileInterval?: string
  /** More options of `watch`. */
  readonly args?: ReadonlyArray<string>
}

export const startWatch = (w: WebRoot, options: WatchStart = {}): WatchProcess => {
  let log = ""
  const child = spawn(process.execPath, [
    binPath, "--log-file", join(w.root, "watch.log"), "--config", options.config ?? join(w.root, "none.toml"), "--verbose",
    "watch", "--img-dir", w.images, "--streams-dir", w.streams, "--state-dir", join(w.root, "state"),
    "--pidfile", join(w.root, "watch.pid"), "--settle", options.settle ?? "0.5",
    ...(options.reconcileInterval ? ["--reconcile-interval", options.reconcileInterval] : []),
    ...(options.args ?? [])
  ], { stdio: ["ignore", "ignore", "pipe"] })
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  return {
    child,
    log: () => log,
    exited,
    stop: (signal = "SIGTERM") => {
      if (child.exitCode === null) child.kill(signal)
      return exited
    }
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Polls until `check` returns true, or fails after `timeoutMs` with `what`, and with the end of `log` (a
 * service's log, say) when given: what a timeout in CI has to tell.
 */
export const waitFor = async (what: string, check: () => boolean, timeoutMs = 20_000, log?: () => string): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${log ? `; the log ends:\n${log().slice(-6000)}` : ""}`)
    await sleep(50)
  }
}

export interface Catalog {
  readonly images: { products: Record<string, { versions: Record<string, { items: Record<string, { sha256: string; size: number; path: string } & Record<string, unknown>> }> }> }
  readonly index: { index: { images?: { products: ReadonlyArray<string> } } }
}

/** The published catalog, or undefined before the first write. Throws if a file is torn. */
export const readCatalog = (w: WebRoot): Catalog | undefined => {
  if (!existsSync(join(w.streams, "index.json"))) return undefined
  const index = JSON.parse(readFileSync(join(w.streams, "index.json"), "utf8"))
  const images = JSON.parse(readFileSync(join(w.streams, "images.json"), "utf8"))
  return { images, index }
}

export const publishedVersions = (w: WebRoot): ReadonlyArray<string> => {
  const c = readCatalog(w)
  if (!c) return []
  return Object.entries(c.images.products).flatMap(([key, p]) => Object.keys(p.versions).map((v) => `${key.split(":").join("/")}/${v}`))
}

/** A reader's check: every file the catalog names exists under the web root `root`. */
export const filesExist = (root: string) => ({ images }: Catalog): ReadonlyArray<string> =>
  Object.values(images.products).flatMap((p) =>
    Object.values(p.versions).flatMap((v) => Object.values(v.items).flatMap((item) => (existsSync(join(root, item.path)) ? [] : [`missing ${item.path}`])))
  )

/**
 * Reads index.json and images.json in a loop until stopped: every read must parse as a whole catalog, and
 * pass `check` (which answers the problems it sees) when one is given.
 */
export const startReader = (w: Pick<WebRoot, "streams">, check: (c: Catalog) => ReadonlyArray<string> = () => []) => {
  let running = true
  let reads = 0
  const problems: Array<string> = []
  const loop = (async () => {
    while (running) {
      try {
        if (existsSync(join(w.streams, "index.json"))) {
          const index = JSON.parse(readFileSync(join(w.streams, "index.json"), "utf8"))
          const images = JSON.parse(readFileSync(join(w.streams, "images.json"), "utf8"))
          if (index.format !== "index:1.0" || typeof images.products !== "object") problems.push("not a catalog")
          else problems.push(...check({ index, images }))
          reads++
        }
      } catch (e) {
        problems.push(String(e))
      }
      await sleep(2)
    }
  })()
  return {
    stop: async () => {
      running = false
      await loop
      return { reads, problems }
    }
  }
}
