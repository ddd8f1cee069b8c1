/**
 * Server-side aliases (SIMPLESTREAMS.md §8): the client copies the comma-separated string verbatim and adds
 * `/<arch>` itself, so the server writes `os/release/variant`, plus `os/release` for the default variant.
 */
export const productAliases = (os: string, release: string, variant: string): ReadonlyArray<string> => {
  const base = `${os}/${release}`.toLowerCase()
  const v = variant.toLowerCase()
  return v === "default" ? [`${base}/${v}`, base] : [`${base}/${v}`]
}

/** Lower case, de-duplicated, no blanks, comma-joined: the exact `aliases` string the client splits. */
export const joinAliases = (aliases: ReadonlyArray<string>): string =>
  [...new Set(aliases.map((a) => a.trim().toLowerCase()).filter((a) => a.length > 0))].join(",")
