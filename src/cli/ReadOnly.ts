/**
 * The commands that only read (status, list, verify, mirror status), and no command at all (the help). A
 * person runs them from any folder, so they open no default log file there (`./lxd-image-server.log`); a log
 * file named by `--log-file` or the config is still written.
 */
import { Option } from "effect"
import { list } from "./List.js"
import { mirrorStatus } from "./Mirror.js"
import { status } from "./Status.js"
import { verify } from "./Verify.js"

const readOnlyTags: ReadonlyArray<unknown> = [status.tag, list.tag, verify.tag, mirrorStatus.tag]

/**
 * Whether the subcommand chosen on the command line only reads (none chosen: the help). @effect/cli hands the
 * root the chosen one as `Some([its tag, its options])`, its options holding its own `subcommand` the same way
 * (`mirror status`).
 */
export const readsOnly = (subcommand: unknown): boolean => {
  let chosen: unknown = undefined
  let next = subcommand
  while (Option.isOption(next) && Option.isSome(next) && Array.isArray(next.value)) {
    const [tag, options] = next.value as [unknown, { readonly subcommand?: unknown } | null]
    chosen = tag
    next = options?.subcommand
  }
  // no command: the root prints its help, and has nothing to log
  return chosen === undefined || readOnlyTags.includes(chosen)
}
