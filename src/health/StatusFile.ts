/**
 * Reads `<state-dir>/status.json`, which the service (`watch` or `serve`) rewrites after each turn that changed
 * it: for `status` and `mirror status`, other processes that take no lock. A missing, torn or foreign file is
 * none, not an error: those commands then say what they can without it.
 */
import { FileSystem, Path } from "@effect/platform"
import { Effect, Either, Option, Schema } from "effect"
import { statusFileName } from "../watch/WatchService.js"

export const StatusFile = Schema.Struct({
  pid: Schema.Int,
  generation: Schema.Int,
  committed_at: Schema.NullOr(Schema.String),
  products: Schema.Int,
  versions: Schema.Int,
  refused: Schema.Array(Schema.Struct({ path: Schema.String, reason: Schema.String })),
  settling: Schema.Int,
  write_error: Schema.NullOr(
    Schema.Struct({ reason: Schema.String, since: Schema.String, failures: Schema.Int, retry_at: Schema.String })
  )
})
export type StatusFile = typeof StatusFile.Type

const decode = Schema.decodeUnknownEither(Schema.parseJson(StatusFile))

/** The status the service last wrote in `stateDir`, if it wrote one that reads. */
export const readStatusFile = (stateDir: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const text = yield* fs.readFileString(path.join(stateDir, statusFileName)).pipe(Effect.option)
    return Option.flatMap(text, (t) => Either.getRight(decode(t)))
  })

/** The primary's generation and when it was committed, as a mirror's lag is measured against. */
export const primaryOf = (s: StatusFile): { readonly generation: number; readonly at: number | null } => {
  const at = s.committed_at === null ? NaN : Date.parse(s.committed_at)
  return { generation: s.generation, at: Number.isNaN(at) ? null : at }
}
