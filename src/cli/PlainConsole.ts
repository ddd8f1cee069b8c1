/**
 * @effect/cli renders help and usage errors with ANSI styles whatever the output is (0.77 has no switch for
 * it): a console that drops the escape sequences on the way out, per stream, when that stream is not a
 * terminal or NO_COLOR is set (https://no-color.org: any non-empty value).
 */
import { Console, Effect } from "effect"

const escapes = /\u001b\[[0-?]*[ -/]*[@-~]/g

/** The text without its ANSI escape sequences. */
export const stripAnsi = (text: string): string => text.replace(escapes, "")

/** Colour on a stream: a terminal, and NO_COLOR unset or empty. */
export const colourOn = (stream: { readonly isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean =>
  stream.isTTY === true && !env["NO_COLOR"]

const plain = (args: ReadonlyArray<unknown>) => args.map((a) => (typeof a === "string" ? stripAnsi(a) : a))

/** The console, with escapes dropped from what goes to a stream that takes no colour. */
export const plainWhereNeeded = (console: Console.Console, colour: { readonly stdout: boolean; readonly stderr: boolean }): Console.Console => {
  if (colour.stdout && colour.stderr) return console
  const out = <F extends (...args: ReadonlyArray<any>) => any>(f: F, on: boolean): F => (on ? f : (((...args: ReadonlyArray<unknown>) => f(...plain(args))) as F))
  return {
    ...console,
    log: out(console.log, colour.stdout),
    info: out(console.info, colour.stdout),
    error: out(console.error, colour.stderr),
    warn: out(console.warn, colour.stderr),
    unsafe: {
      ...console.unsafe,
      log: out(console.unsafe.log, colour.stdout),
      info: out(console.unsafe.info, colour.stdout),
      error: out(console.unsafe.error, colour.stderr),
      warn: out(console.unsafe.warn, colour.stderr)
    }
  }
}

/** Runs the effect with the console above, for this process's streams and environment. */
export const withPlainConsole = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.console, (console) =>
    Effect.withConsole(effect, plainWhereNeeded(console, { stdout: colourOn(process.stdout), stderr: colourOn(process.stderr) }))
  )
