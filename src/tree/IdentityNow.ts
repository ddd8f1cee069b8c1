/**
 * A file's identity as it is now (see Identity): the one look at the disk that "is this still that very file"
 * needs, for the hasher's check after reading, the journal's record of images.json and a restart's use of it.
 */
import { statSync } from "node:fs"
import { type FileIdentity, identityOf } from "./Identity.js"

/** The identity of the file at `path`, named `name`; undefined when it is gone or cannot be looked at. */
export const identityNow = (path: string, name: string): FileIdentity | undefined => {
  try {
    return identityOf(name, statSync(path))
  } catch {
    return undefined
  }
}
