/** What the mirror tests check on a mirror's web root. */
import { createHash } from "node:crypto"
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { expect } from "vitest"
import { tempDir } from "../../support/Images.js"
import { makeWebRoot, type WebRoot } from "../../support/Tree.js"
import { makeKey, type RunningSshd, startSshd } from "./Sshd.js"

export interface Catalog {
  readonly products: Record<string, { versions: Record<string, { items: Record<string, { path: string; size: number; sha256: string }> }> }>
}

const itemsOf = (images: Catalog) =>
  Object.values(images.products).flatMap((p) => Object.values(p.versions).flatMap((v) => Object.values(v.items)))

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex")

/** The mirror serves the primary's catalog, byte for byte, and every file it names, whole. */
export const expectSameCatalog = (primary: WebRoot, mirrorRoot: string) => {
  for (const name of ["images.json", "index.json"]) {
    expect(readFileSync(join(mirrorRoot, "streams", "v1", name), "utf8"), name).toBe(readFileSync(join(primary.streams, name), "utf8"))
  }
  const images = JSON.parse(readFileSync(join(mirrorRoot, "streams", "v1", "images.json"), "utf8")) as Catalog
  for (const item of itemsOf(images)) {
    const file = join(mirrorRoot, item.path)
    expect(existsSync(file), item.path).toBe(true)
    expect(statSync(file).size, item.path).toBe(item.size)
    expect(sha256(file), item.path).toBe(item.sha256)
  }
}

/** The lines of a `[mirrors.NAME]` table reaching the test's sshd. */
export const mirrorTable = (name: string, keys: Readonly<Record<string, string | number>>): ReadonlyArray<string> => [
  `[mirrors.${name}]`,
  ...Object.entries(keys).map(([k, v]) => `${k} = ${typeof v === "number" ? v : JSON.stringify(v)}`)
]

/** A primary web root and one push mirror (`eu1`) on the test's sshd, with the config file naming both. */
export interface PrimaryWithMirror {
  readonly work: string
  readonly primary: WebRoot
  readonly mirrorRoot: string
  readonly config: string
  readonly sshd: RunningSshd
  /** Stops sshd and removes both folders. */
  readonly remove: () => Promise<void>
}

/** Makes a primary and its mirror; `graceHours`: `[prune] grace_hours` of the config (watch's deletions). */
export const primaryWithMirror = async (prefix: string, graceHours: number): Promise<PrimaryWithMirror> => {
  const work = tempDir(prefix)
  const primary = makeWebRoot()
  const mirrorRoot = join(work, "mirror-www")
  mkdirSync(mirrorRoot)
  const key = makeKey(join(work, "key"))
  const sshd = await startSshd(join(work, "sshd"), [key.publicKey])
  writeFileSync(join(work, "known_hosts"), `${sshd.knownHostsLine}\n`)
  const config = join(work, "config.toml")
  writeFileSync(
    config,
    [
      `state_dir = "${join(primary.root, "state")}"`,
      `streams_dir = "${primary.streams}"`,
      `img_dir = "${primary.images}"`,
      ...mirrorTable("eu1", { host: "127.0.0.1", user: sshd.user, port: sshd.port, key_path: key.path, root_dir: mirrorRoot, known_hosts: join(work, "known_hosts") }),
      "[prune]",
      `grace_hours = ${graceHours}`,
      ""
    ].join("\n")
  )
  const remove = async () => {
    await sshd.stop()
    rmSync(work, { recursive: true, force: true })
    rmSync(primary.root, { recursive: true, force: true })
  }
  return { work, primary, mirrorRoot, config, sshd, remove }
}
