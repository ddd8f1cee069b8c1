/**
 * `verify`: re-hash every file the published catalog names and check it against the catalog. Exit 0 when
 * all hold; 1 with one line per problem on stdout; 2 when the catalog itself cannot be read, so that a script
 * tells "the files are wrong" from "there is nothing to check".
 */
import { UsageError } from "./Failure.js"
import { Command } from "@effect/cli"
import { Effect } from "effect"
import { Verifier } from "../inspect/Verifier.js"
import { mib } from "../sync/Syncer.js"
import { inspectOptions, resolveInspect } from "./List.js"


export const verify = Command.make("verify", inspectOptions, (flags) =>
  Effect.gen(function* () {
    const options = yield* resolveInspect(flags)
    const started = Date.now()
    const result = yield* (yield* Verifier).verify(options)
    const took = `${((Date.now() - started) / 1000).toFixed(2)} s`
    const what = `${result.versions} versions, ${result.files} files, ${mib(result.bytes)}`
    if (result.problems.length === 0) return yield* Effect.logInfo(`verified ${what} in ${took}: all hold`)
    yield* Effect.sync(() => {
      process.stdout.write(result.problems.map((p) => `${p}\n`).join(""))
      process.exitCode = 1
    })
    yield* Effect.logError(`verified ${what} in ${took}: ${result.problems.length} problem(s)`)
  }).pipe(
    Effect.catchTag("CatalogUnreadable", (e) => Effect.fail(new UsageError({ reason: e.message })))
  )
).pipe(Command.withDescription("Re-hash every published file and check sizes, sha256 and combined fingerprints against images.json (exit 1 on a problem, 2 on an unreadable catalog)"))
