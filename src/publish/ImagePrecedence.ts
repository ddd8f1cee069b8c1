/**
 * Which of two version folders keeps an image both list (one fingerprint listed twice breaks every launch of
 * it: "More than one match"). The one in the catalog clients already have keeps it, else the first by folder;
 * the other is refused, and waits until the keeper leaves. Pure: the Publisher decides with it as versions
 * come and go, and `buildCatalog` orders a whole set by it, so both keep the same version.
 */
import { refusal, type Refusal } from "../tree/Layout.js"

/** Version folder `a` keeps the image rather than `b`. `incumbent`: the folder is in the committed catalog. */
export const keepsImage = (a: string, b: string, incumbent: (key: string) => boolean): boolean => {
  const ra = incumbent(a) ? 0 : 1
  const rb = incumbent(b) ? 0 : 1
  return ra !== rb ? ra < rb : a < b
}

/** The same rule as an order of version folders: whoever keeps an image comes first. */
export const imagePrecedence = (incumbent: (key: string) => boolean) => (a: string, b: string): number =>
  a === b ? 0 : keepsImage(a, b, incumbent) ? -1 : 1

/** The refusal of the folder left out, naming the one that keeps the image. */
export const sameImageRefusal = (key: string, keeper: string, fingerprint: string): Refusal =>
  refusal(key, `the same image as ${keeper} (fingerprint ${fingerprint.slice(0, 12)})`)
