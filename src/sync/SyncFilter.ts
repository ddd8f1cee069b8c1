/**
 * `--filter KEY=VALUE` (and `filters` of a `[sync.NAME]` table), pure: which upstream images a sync copies.
 * Keys are `os`, `release`, `arch`, `variant` and `type`; a key given several times matches any of its values,
 * and different keys must all match. `os` and `variant` ignore case (folder names are lower case), `arch` takes
 * any name the clients know for the machine (`amd64` matches `x86_64`), `type` is `container` or
 * `virtual-machine`.
 */
import { Either } from "effect"
import { isKnownArchitecture, sameArchitecture } from "../simplestreams/Architecture.js"

export const filterKeys = ["os", "release", "arch", "variant", "type"] as const
export type FilterKey = (typeof filterKeys)[number]

export type SyncFilters = { readonly [K in FilterKey]?: ReadonlyArray<string> }

export const instanceTypes = ["container", "virtual-machine"] as const

/** One `KEY=VALUE`, checked: a known key, a value, a known architecture or type. */
export const parseFilter = (text: string): Either.Either<readonly [FilterKey, string], string> => {
  const eq = text.indexOf("=")
  const key = eq === -1 ? text : text.slice(0, eq).trim()
  const value = eq === -1 ? "" : text.slice(eq + 1).trim()
  if (!(filterKeys as ReadonlyArray<string>).includes(key)) {
    return Either.left(`filter ${JSON.stringify(text)}: expected KEY=VALUE with KEY one of ${filterKeys.join(", ")}`)
  }
  if (value === "") return Either.left(`filter ${JSON.stringify(text)}: no value after ${key}=`)
  if (key === "arch" && !isKnownArchitecture(value)) return Either.left(`filter ${JSON.stringify(text)}: unknown architecture '${value}'`)
  if (key === "type" && !(instanceTypes as ReadonlyArray<string>).includes(value)) {
    return Either.left(`filter ${JSON.stringify(text)}: type is ${instanceTypes.join(" or ")}`)
  }
  return Either.right([key as FilterKey, value] as const)
}

/** Every filter given, grouped by key; the first bad one is the reason. */
export const parseFilters = (texts: ReadonlyArray<string>): Either.Either<SyncFilters, string> => {
  const grouped: Partial<Record<FilterKey, Array<string>>> = {}
  for (const text of texts) {
    const parsed = parseFilter(text)
    if (Either.isLeft(parsed)) return Either.left(parsed.left)
    const [key, value] = parsed.right
    ;(grouped[key] ??= []).push(value)
  }
  return Either.right(grouped)
}

const anyOf = (wanted: ReadonlyArray<string> | undefined, match: (value: string) => boolean) => wanted === undefined || wanted.some(match)

const sameText = (a: string) => (b: string) => a.toLowerCase() === b.toLowerCase()

/** A product passes (by its upstream names and the folder names it gets here). */
export const productMatches = (
  filters: SyncFilters,
  product: { readonly os: ReadonlyArray<string>; readonly release: ReadonlyArray<string>; readonly arch: string; readonly variant: string }
): boolean =>
  anyOf(filters.os, (v) => product.os.some(sameText(v))) &&
  anyOf(filters.release, (v) => product.release.includes(v)) &&
  anyOf(filters.arch, (v) => sameArchitecture(v, product.arch)) &&
  anyOf(filters.variant, sameText(product.variant))

export const typeMatches = (filters: SyncFilters, type: (typeof instanceTypes)[number]): boolean => anyOf(filters.type, (v) => v === type)
