/**
 * `SHA256SUMS` in a version folder, pure: the `sha256sum` format parsed, and the hashed files of a version
 * checked against it. An uploader that sends the sums first can then be sure that a half upload is never
 * published, even by a writer that stalls past the settle time: the partial file does not match its line.
 */
import { Either } from "effect"

export const sumsFileName = "SHA256SUMS"

/** The sums file is a few lines per version; a larger one is not a sums file. */
export const sumsFileLimit = 1024 * 1024

/** Why the sums file itself is unusable, with the line a person has to fix (1-based), if one. */
export interface SumsProblem {
  readonly line?: number
  readonly reason: string
}

/** `<64 hex> <space><space or *><name>`, as `sha256sum` (text or binary mode) writes it; `./name` too. */
const lineShape = /^([0-9A-Fa-f]{64}) [ *](?:\.\/)?([^/\\]+)$/

/** File name → sha256 (lower case), or the first bad line. Blank lines are allowed, as sha256sum -c allows them. */
export const parseSha256Sums = (text: string): Either.Either<ReadonlyMap<string, string>, SumsProblem> => {
  const sums = new Map<string, string>()
  const lines = text.split("\n")
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\r$/, "")
    if (raw.trim() === "") continue
    const m = lineShape.exec(raw)
    if (m === null) return Either.left({ line: i + 1, reason: "is not '<64 hex digits>  <file name>'" })
    const [, sha, name] = m as unknown as [string, string, string]
    const before = sums.get(name)
    if (before !== undefined && before !== sha.toLowerCase()) {
      return Either.left({ line: i + 1, reason: `lists ${name} a second time, with another sha256` })
    }
    sums.set(name, sha.toLowerCase())
  }
  return Either.right(sums)
}

/** A file of the version that goes into the catalog, with the sha256 it was hashed to. */
export interface SummedFile {
  readonly name: string
  readonly sha256: string
}

/** What the sums say against the files, naming the file at fault. */
export interface SumsMismatch {
  readonly file: string
  readonly reason: string
}

/**
 * Every published file is listed and matches, and every image file the sums list is there: a version whose
 * rootfs is still on its way (listed, not yet in the folder) is not published half.
 */
export const checkSums = (
  sums: ReadonlyMap<string, string>,
  published: ReadonlyArray<SummedFile>,
  present: ReadonlyArray<string>,
  isImageFile: (name: string) => boolean
): SumsMismatch | undefined => {
  for (const f of published) {
    const listed = sums.get(f.name)
    if (listed === undefined) return { file: f.name, reason: `not listed in ${sumsFileName}` }
    if (listed !== f.sha256) {
      return { file: f.name, reason: `sha256 ${f.sha256} does not match ${listed} in ${sumsFileName} (an upload not finished yet?)` }
    }
  }
  for (const name of sums.keys()) {
    if (isImageFile(name) && !present.includes(name)) {
      return { file: name, reason: `listed in ${sumsFileName} but not in the folder (an upload not finished yet?)` }
    }
  }
  return undefined
}
