/**
 * Shell completions come from @effect/cli (`--completions bash|zsh`). Its bash script names the state of a
 * command with a hyphen (`lxd-image-server`) in one place and with `__` (`lxd__image__server`) in the others, so
 * that nothing after the command name ever completes (Effect-TS/effect#6114, open); and it gives the cases of a
 * choice to `compgen -W` joined by commas, one word for bash. The packaged script is that output, mended.
 */

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/**
 * The bash completion script of `name`, with the root command's state spelled as the subcommands' arms expect,
 * and each choice's cases as separate words (option names and cases hold no commas).
 */
export const fixBashCompletions = (script: string, name: string): string => {
  const state = name.replace(/-/g, "__")
  const n = escapeRegExp(name)
  return script
    .replace(new RegExp(`^(\\s*)cmd="${n}"$`, "m"), `$1cmd="${state}"`)
    .replace(new RegExp(`^(\\s*)${n}\\)$`, "m"), `$1${state})`)
    .replace(/compgen -W "([^"]*)"/g, (_, words: string) => `compgen -W "${words.replace(/,/g, " ")}"`)
}
