/**
 * The version folder a path under the images folder is in: `os/release/arch/variant/version`, the key the
 * catalog's memory and the file watcher use; undefined for a path above version level. Pure, and alone in its
 * module so that the file watcher's thread loads nothing else.
 */
/** The levels of folders above the version folders: os, release, arch, variant. */
export const foldersAboveVersions = 4

export const versionKeyOf = (path: string): string | undefined => {
  const segments = path.split("/")
  return segments.length > foldersAboveVersions ? segments.slice(0, foldersAboveVersions + 1).join("/") : undefined
}
