/**
 * What makes a file the same file, unchanged: device, inode, size, mtime and ctime. Pure. A rename over it
 * changes the inode, a write in place changes mtime and ctime (even one that restores the mtime with
 * `touch -d` changes ctime), so two equal identities taken before and after reading a file mean the bytes
 * read are the bytes that are there. `update` and `watch` share this one rule, and so do the hash and refusal
 * memories, which are keyed by it.
 */
export interface FileIdentity {
  readonly name: string
  readonly dev: number
  readonly ino: number
  readonly size: number
  readonly mtimeMs: number
  readonly ctimeMs: number
}

/** The identity of a file from its stat (node's Stats keep the sub-millisecond part of the times). */
export const identityOf = (
  name: string,
  s: { readonly dev: number; readonly ino: number; readonly size: number; readonly mtimeMs: number; readonly ctimeMs: number }
): FileIdentity => ({ name, dev: s.dev, ino: s.ino, size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs })

export const sameIdentity = (a: FileIdentity, b: FileIdentity): boolean =>
  a.name === b.name && a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs

/** Two lists of files are the same files, unchanged, in the same order. */
export const sameIdentities = (a: ReadonlyArray<FileIdentity>, b: ReadonlyArray<FileIdentity>): boolean =>
  a.length === b.length && a.every((f, i) => sameIdentity(f, b[i]!))

/** The identity alone, without whatever else an object that has one carries. */
export const justIdentity = (f: FileIdentity): FileIdentity => identityOf(f.name, f)
