/** One readable line for a failure that stops a command. */
export const describeFailure = (failure: unknown): string => {
  if (failure instanceof Error) return failure.message || failure.name
  if (typeof failure === "object" && failure !== null) {
    const { message, reason, path } = failure as { message?: unknown; reason?: unknown; path?: unknown }
    if (typeof message === "string" && message) return message
    if (typeof reason === "string") return typeof path === "string" ? `${path}: ${reason}` : reason
  }
  return String(failure)
}
