/** Entry point: runs the command line with the live platform layers, and ends the process once it is done. */
import { ValidationError } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Exit } from "effect"
import { cli } from "./cli/Cli.js"
import { describeFailure, UsageError } from "./cli/Failure.js"
import { withPlainConsole } from "./cli/PlainConsole.js"
import { ConfigError } from "./config/AppConfig.js"
import { failureLine } from "./config/Logging.js"
import { clearStatus } from "./progress/StatusLine.js"
import * as SafeFileSystem from "./process/SafeFileSystem.js"

const outputs = [process.stdout, process.stderr]

/** Calls `then` once what was written to stdout and stderr has left the process. */
const afterOutput = (then: () => void) => {
  const streams = outputs.filter((s) => s.writableLength > 0)
  let waiting = streams.length
  if (waiting === 0) return then()
  // written after the rest, an empty chunk's callback says the rest is written (or the stream failed)
  for (const s of streams) s.write("", () => --waiting === 0 && then())
}

// a reader that stopped early (`list | head`) wants no more: what is printed after goes nowhere, and the command
// finishes its work (add publishes what it copied) and exits, with no stack trace of the closed pipe
for (const s of outputs) {
  s.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e
  })
}

cli(process.argv).pipe(
  withPlainConsole,
  // the CLI already printed usage errors; any other failure is one clear line, never a stack trace
  Effect.catchAllCause((cause) =>
    Effect.sync(() => {
      // SIGTERM and SIGINT interrupt the program: a clean stop, exit 0
      if (Cause.isInterruptedOnly(cause)) return
      const failure = Cause.squash(cause)
      // bad input, on the command line or in the config file: exit 2, as usage errors do by convention
      process.exitCode = failure instanceof UsageError || failure instanceof ConfigError || ValidationError.isValidationError(failure) ? 2 : 1
      if (ValidationError.isValidationError(failure)) return
      clearStatus()
      process.stderr.write(`${failureLine(describeFailure(failure))}\n`)
    })
  ),
  // mkdir -p that cannot spin forever (see SafeFileSystem), over node's file system
  Effect.provide(SafeFileSystem.layer),
  Effect.provide(NodeContext.layer),
  // every scope of the program is closed once it ends, its files written and its threads told to stop: it exits
  // then, with the code set above, once what it printed has left it (a pipe read slowly holds the rest in the
  // process), not once the event loop has drained and the heap is torn down (after update hashed 2 GiB: 23 ms
  // from its last line to its end instead of 39, medians of 8)
  NodeRuntime.runMain({
    disablePrettyLogger: true,
    disableErrorReporting: true,
    // process.exit() without an argument: given one, even undefined, it takes that over the code set above
    teardown: (exit) => afterOutput(() => (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause) ? process.exit(1) : process.exit()))
  })
)
