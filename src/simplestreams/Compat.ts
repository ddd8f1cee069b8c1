import type { MetadataFtype } from "./Ftype.js"

/** Which clients the catalog is written for: LXD reads only `lxd.tar.xz` items, Incus only `incus.tar.xz`. */
export type Compat = "both" | "lxd" | "incus"

export const compatModes: ReadonlyArray<Compat> = ["both", "lxd", "incus"]

/** The metadata item types to write for a compat mode, one per client. */
export const metadataFtypes = (compat: Compat): ReadonlyArray<MetadataFtype> =>
  compat === "both" ? ["incus.tar.xz", "lxd.tar.xz"] : compat === "lxd" ? ["lxd.tar.xz"] : ["incus.tar.xz"]
