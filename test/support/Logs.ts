import { Layer, Logger } from "effect"

/** A logger layer that keeps every line as "LEVEL message", for asserting on warnings. */
export const captureLogs = () => {
  const lines: Array<string> = []
  const layer = Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ logLevel, message }) => {
      lines.push(`${logLevel.label} ${(Array.isArray(message) ? message : [message]).join(" ")}`)
    })
  )
  return { lines, layer: layer as Layer.Layer<never> }
}
