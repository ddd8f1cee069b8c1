/**
 * A flag held to the rule of its config key (`settingProblem`): `--port 99999` is refused as `port = 99999` in
 * the config file is, with the flag's name, before the command does anything.
 */
import { HelpDoc, Options, ValidationError } from "@effect/cli"
import { Effect } from "effect"
import { type ConfigFile, settingProblem } from "../config/AppConfig.js"

/** Before `Options.optional` (it checks the value, not an Option); after `Options.repeated`, as the list its key is. */
export const heldToKey =
  (flag: string, key: keyof ConfigFile) =>
  <A>(self: Options.Options<A>): Options.Options<A> =>
    Options.mapEffect(self, (value) => {
      const problem = settingProblem(key, value)
      return problem === undefined ? Effect.succeed(value) : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--${flag}: ${problem}`)))
    })
