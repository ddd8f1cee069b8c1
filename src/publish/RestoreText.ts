/**
 * The catalog's text at a restart. Rendering every product again costs 0.45 s of CPU at 10,000 versions over
 * 1,000 products, on the main thread while the file watcher crawls on the other core, and slows that crawl.
 * When images.json is the very file the last generation wrote (its identity, as the journal recorded it), and
 * it was rendered by this build for this compat mode and images path (its render key), each product's text is
 * cut from it instead; only the products of version folders remembered or forgotten since are rendered again.
 * Anything else (another writer, an edit by hand, another build, a compacted journal) renders every product.
 */
import { readFileSync } from "node:fs"
import { CatalogText } from "../indexer/CatalogText.js"
import { type FileIdentity, sameIdentity } from "../tree/Identity.js"
import { identityNow } from "../tree/IdentityNow.js"
import type { JournalState } from "./Journal.js"
import { type Publisher, productKeyOf } from "./Publisher.js"

/**
 * What a catalog's text depends on besides the versions: the build that renders it (undefined: not known,
 * and then nothing is reused), the compat mode and the images path.
 */
export const renderKeyOf = (build: string | undefined, compat: string, imagesPath: string): string | undefined =>
  build === undefined ? undefined : JSON.stringify([build, compat, imagesPath])

/** Every product rendered from the publisher's versions (each was checked when it was accepted). */
export const renderedText = (publisher: Publisher): CatalogText => {
  const text = new CatalogText()
  for (const pk of publisher.productKeys()) text.setProduct(pk, publisher.product(pk), { checked: true })
  return text
}

/**
 * The text cut from `bytes` (images.json as the journal says it was written), with the products of the
 * `touched` version folders rendered again; undefined when the file does not hold the publisher's products.
 * Pure.
 */
export const textFromWritten = (publisher: Publisher, bytes: Uint8Array, touched: ReadonlySet<string>): RestoredText | undefined => {
  const text = CatalogText.fromWritten(bytes, CatalogText.fileOrder(publisher.productKeys()))
  if (text === undefined) return undefined
  const again = new Set([...touched].map(productKeyOf))
  for (const pk of again) text.setProduct(pk, publisher.product(pk), { checked: true })
  return { text, rendered: again.size }
}

export interface RestoredText {
  readonly text: CatalogText
  /** How many products were rendered (all of them when the text could not be cut from images.json). */
  readonly rendered: number
  /** images.json, when the text is that file's bytes exactly (nothing rendered again). */
  readonly file?: FileIdentity | undefined
}

/**
 * The text to start from: cut from images.json when the journal's record says it may be, else rendered. The
 * file is read between two looks at its identity, so that a file replaced meanwhile is not taken.
 */
export const restoreText = (publisher: Publisher, state: Pick<JournalState, "written">, imagesFile: string, renderKey: string | undefined): RestoredText => {
  const written = state.written
  const rendered = (): RestoredText => {
    const text = renderedText(publisher)
    return { text, rendered: text.size }
  }
  if (written === undefined || renderKey === undefined || written.key !== renderKey) return rendered()
  const now = () => identityNow(imagesFile, written.file.name)
  const before = now()
  if (before === undefined || !sameIdentity(before, written.file)) return rendered()
  let bytes: Buffer
  try {
    bytes = readFileSync(imagesFile)
  } catch {
    return rendered()
  }
  const after = now()
  if (after === undefined || !sameIdentity(after, before)) return rendered()
  const restored = textFromWritten(publisher, bytes, written.touched)
  if (restored === undefined) return rendered()
  return restored.rendered === 0 ? { ...restored, file: after } : restored
}
