/** What the mirror tests check on a mirror's web root. */
import { createHash } from "node:crypto"
import { existsSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { expect } from "vitest"
import type { WebRoot } from "../../support/Tree.js"

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
