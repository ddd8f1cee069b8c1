/**
 * Architecture names as LXD and Incus know them (`shared/osarch/architectures.go`, SIMPLESTREAMS.md §7).
 * A product whose `arch` the client does not know is dropped silently, so the server must refuse it loudly.
 */

/** Canonical Linux name → every name the clients accept for it, the preferred product name first. */
const table: ReadonlyArray<readonly [canonical: string, names: ReadonlyArray<string>]> = [
  ["x86_64", ["amd64", "x86_64", "generic_64", "x86_64_v1", "x86_64_v2", "x86_64_v3", "x86_64_v4", "amd64v3"]],
  ["aarch64", ["arm64", "aarch64", "arm64_generic"]],
  ["armv7l", ["armhf", "armv7l", "armhfp", "armv7a_hardfp", "armv7", "armv7a_vfpv3_hardfp"]],
  ["armv6l", ["armel", "armv6l", "arm"]],
  ["armv8l", ["armv8l"]],
  ["i686", ["i386", "i686", "i586", "386", "x86", "generic_32"]],
  ["ppc64le", ["ppc64el", "ppc64le"]],
  ["ppc64", ["ppc64", "powerpc64"]],
  ["ppc", ["powerpc", "ppc"]],
  ["s390x", ["s390x"]],
  ["riscv64", ["riscv64"]],
  ["riscv32", ["riscv32"]],
  ["mips", ["mips", "mipsel", "mipsle"]],
  ["mips64", ["mips64", "mips64el", "mips64le"]],
  ["loongarch64", ["loong64", "loongarch64"]]
]

const byName = new Map<string, { readonly canonical: string; readonly preferred: string }>(
  table.flatMap(([canonical, names]) => names.map((name) => [name, { canonical, preferred: names[0]! }] as const))
)

/** The canonical Linux name (`x86_64`) for any accepted name (`amd64`), or undefined when unknown. */
export const canonicalArchitecture = (name: string): string | undefined => byName.get(name)?.canonical

/** The Debian-style name to write as the product `arch` (`x86_64` → `amd64`), or undefined when unknown. */
export const productArchitecture = (name: string): string | undefined => byName.get(name)?.preferred

export const isKnownArchitecture = (name: string): boolean => byName.has(name)

/** True when two accepted names denote the same machine (`amd64` and `x86_64`). */
export const sameArchitecture = (a: string, b: string): boolean => {
  const ca = canonicalArchitecture(a)
  return ca !== undefined && ca === canonicalArchitecture(b)
}
