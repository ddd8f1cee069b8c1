/** Entry point: runs the command line with the live platform layers. Nothing else. */
import { ValidationError } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect } from "effect"
import { cli } from "./cli/Cli.js"
import { describeFailure, UsageError } from "./cli/Failure.js"
import { withPlainConsole } from "./cli/PlainConsole.js"
import { failureLine } from "./config/Logging.js"
import { clearStatus } from "./progress/StatusLine.js"

cli(process.argv).pipe(
  withPlainConsole,
  // the CLI already printed usage errors; any other failure is one clear line, never a stack trace
  Effect.catchAllCause((cause) =>
    Effect.sync(() => {
      // SIGTERM and SIGINT interrupt the program: a clean stop, exit 0
      if (Cause.isInterruptedOnly(cause)) return
      const failure = Cause.squash(cause)
      // bad command-line input: exit 2, as usage errors do by convention
      process.exitCode = failure instanceof UsageError || ValidationError.isValidationError(failure) ? 2 : 1
      if (ValidationError.isValidationError(failure)) return
      clearStatus()
      process.stderr.write(`${failureLine(describeFailure(failure))}\n`)
    })
  ),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disablePrettyLogger: true, disableErrorReporting: true })
)
