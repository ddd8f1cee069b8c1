/**
 * The version folder a path under the images folder is in: `os/release/arch/variant/version`, the key the
 * catalog's memory and the file watcher use; undefined for a path above version level. Pure, and alone in its
 * module so that the file watcher's thread loads nothing else.
 */
export const versionKeyOf = (path: string): string | undefined => {
  const segments = path.split("/")
  return segments.length >= 5 ? segments.slice(0, 5).join("/") : undefined
}
