import { Data } from "effect"

/** Bad input on the command line: one line, exit status 2, nothing changed. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly reason: string }> {
  override get message() {
    return this.reason
  }
}

/** One readable line for a failure that stops a command. */
export const describeFailure = (failure: unknown): string => {
  // a wrapper without words of its own (the HTTP server's ServeError, say) is described by its cause
  const cause = (failure as { cause?: unknown } | null)?.cause
  if (failure instanceof Error && !failure.message && cause !== undefined) return describeFailure(cause)
  if (failure instanceof Error) return failure.message || failure.name
  if (typeof failure === "object" && failure !== null) {
    const { message, reason, path } = failure as { message?: unknown; reason?: unknown; path?: unknown }
    if (typeof message === "string" && message) return message
    if (typeof reason === "string") return typeof path === "string" ? `${path}: ${reason}` : reason
  }
  return String(failure)
}
