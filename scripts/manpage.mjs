#!/usr/bin/env node
// Turns the README (Markdown) into the man page lxd-image-server(1), in roff: headings, paragraphs, lists,
// tables and code blocks; links keep their text. Usage: node scripts/manpage.mjs README.md > lxd-image-server.1
import { readFileSync } from "node:fs"

const [, , source = "README.md"] = process.argv
const lines = readFileSync(source, "utf8").split("\n")
const version = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version

const escape = (s) => s.replace(/\\/g, "\\e").replace(/^([.'])/, "\\&$1").replace(/-/g, "\\-")
const inline = (s) =>
  escape(s)
    .replace(/\[([^\]]+)\]\([^)]+\)/g, "$1")
    .replace(/`([^`]+)`/g, "\\fB$1\\fR")
    .replace(/\*\*([^*]+)\*\*/g, "\\fB$1\\fR")

const out = [`.TH LXD\\-IMAGE\\-SERVER 1 "" "lxd-image-server ${version}" "User Commands"`, ".SH NAME", "lxd\\-image\\-server \\- simplestreams image server for LXD and Incus", ".SH DESCRIPTION"]
let inCode = false
for (const line of lines.slice(1)) {
  if (line.startsWith("```")) {
    out.push(inCode ? ".fi\n.RE" : ".RS 2\n.nf")
    inCode = !inCode
    continue
  }
  if (inCode) {
    out.push(escape(line) || "")
    continue
  }
  if (/^## /.test(line)) out.push(`.SH ${inline(line.slice(3).toUpperCase())}`)
  else if (/^### /.test(line)) out.push(`.SS ${inline(line.slice(4))}`)
  else if (/^\|[- |]+\|$/.test(line)) continue
  else if (/^\|/.test(line)) out.push(".IP \\(bu 2", inline(line.split("|").slice(1, -1).map((c) => c.trim()).filter(Boolean).join(" \u2014 ")))
  else if (/^\s*[-*] /.test(line)) out.push(".IP \\(bu 2", inline(line.replace(/^\s*[-*] /, "")))
  else if (line.trim() === "") out.push(".PP")
  else out.push(inline(line.trim()))
}
process.stdout.write(`${out.join("\n").replace(/(\.PP\n)+/g, ".PP\n")}\n`)
