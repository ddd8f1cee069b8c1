/**
 * The one line at the bottom of a terminal that a progress bar redraws in place, and the log lines that must
 * pass above it: stderr is shared by both, so both write through here. Plain carriage returns and spaces, no
 * escape sequences: they work on every terminal, `TERM=dumb` included.
 */

let shown = ""

const blank = (text: string) => `\r${" ".repeat(text.length)}\r`

/** Writes a whole line to stderr; a status line on screen is wiped first and drawn again below it. */
export const writeLine = (line: string): void => {
  process.stderr.write(shown === "" ? `${line}\n` : `${blank(shown)}${line}\n${shown}`)
}

/** Draws (or redraws) the status line; a shorter text is padded over the longer one. */
export const showStatus = (text: string): void => {
  process.stderr.write(`\r${text.padEnd(shown.length)}`)
  shown = text
}

/** Wipes the status line, leaving the cursor at the start of an empty line. */
export const clearStatus = (): void => {
  if (shown !== "") process.stderr.write(blank(shown))
  shown = ""
}
