#!/usr/bin/env node
// Bundles the command line into one file and writes the launcher that runs it:
//   dist/lxd-image-server.cjs         the launcher: the package's `bin`, and what the Debian package runs
//   dist/lxd-image-server.bundle.cjs  the whole program (CommonJS, whitespace and syntax minified)
//   dist/lxd-image-server.bundle.cjs.cache  V8's code cache for it, made here by running it once
//   dist/lxd-image-server.watcher.cjs  the file watcher's thread, which `watch` and `serve` start beside them
// One file loads in about 0.27 s where the module tree takes 0.9 s; with the code cache, in 0.17 s.
// Names are not minified, and not kept with esbuild's keepNames either: keepNames wraps every function made at
// run time in a call that sets its name, and chokidar makes several per file it watches (10,000 versions: its
// crawl took 6.7 s instead of 5.9 s). Unminified names cost 0.7 MB of bundle and nothing measurable at start.
import { build } from "esbuild"
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { makeTinyTree } from "./bench/trees.mjs"
// tsc's output, written just before this script runs (npm run build): the one definition of the threads the
// launcher starts early (the hash workers' start, the file watcher's file and options)
import { earlyHashWorkers, earlyWatcher, hashWorkerBoot } from "../dist/src/process/EarlyThreads.js"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const dist = join(root, "dist")
const bundle = join(dist, "lxd-image-server.bundle.cjs")
const launcher = join(dist, "lxd-image-server.cjs")
/**
 * The build's id (src/process/BuildId.ts): a digest of every source file and of the locked dependencies, so
 * that a restart of a changed program never takes text that an earlier build rendered.
 */
const buildId = (() => {
  const hash = createHash("sha256")
  const files = readdirSync(join(root, "src"), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort()
  for (const file of [...files, join(root, "package.json"), join(root, "package-lock.json")]) {
    hash.update(`${relative(root, file)}\0`)
    hash.update(readFileSync(file))
  }
  return hash.digest("hex").slice(0, 16)
})()
const options = {
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  logLevel: "warning",
  define: { LXD_IMAGE_SERVER_BUILD: JSON.stringify(buildId) }
}
await build({ ...options, entryPoints: [join(root, "src", "bin.ts")], outfile: bundle })
// the file watcher's thread (src/watch/WatcherThread.ts): chokidar alone, so that the thread starts in milliseconds
await build({ ...options, entryPoints: [join(root, "src", "watch", "WatcherThread.ts")], outfile: join(dist, earlyWatcher.file) })
writeFileSync(
  launcher,
  `#!/usr/bin/env node
// Runs lxd-image-server.bundle.cjs with V8's code cache beside it, when there is one that this Node accepts
// (made by the build, with the same Node); without it the program runs the same, only its start is slower.
"use strict"
const fs = require("node:fs")
const path = require("node:path")
const vm = require("node:vm")
const { wrap } = require("node:module")
// the program exposes V8's gc at run time (CollectGarbage), and V8 takes a code cache only under the flags it
// was made with: set first, the flags are the same when the build makes the cache and whenever it is used
require("node:v8").setFlagsFromString("--expose-gc")
// the threads a command needs at once start here, while the program loads (0.1 s sooner): the hash workers of
// update, add and verify, the file watcher of watch and serve. The program takes them (src/process/EarlyThreads.ts);
// unused, they do not hold the process.
const early = (command, key, start) => {
  if (!process.argv.slice(2).some((word) => command.includes(word))) return
  const threads = []
  try {
    start((thread) => {
      thread.unref()
      // what fails before the program takes it is its own end, not the process's (the program starts another)
      thread.on("error", () => {})
      thread.once("exit", () => threads.includes(thread) && threads.splice(threads.indexOf(thread), 1))
      threads.push(thread)
    })
  } catch {}
  globalThis[Symbol.for(key)] = threads
}
early(${JSON.stringify(earlyHashWorkers.commands)}, ${JSON.stringify(earlyHashWorkers.key)}, (keep) => {
  const { Worker } = require("node:worker_threads")
  for (let i = 0; i < require("node:os").availableParallelism(); i++) keep(new Worker(${JSON.stringify(hashWorkerBoot)}, { eval: true }))
})
early(${JSON.stringify(earlyWatcher.commands)}, ${JSON.stringify(earlyWatcher.key)}, (keep) => {
  const { Worker } = require("node:worker_threads")
  keep(new Worker(path.join(__dirname, ${JSON.stringify(earlyWatcher.file)}), ${JSON.stringify(earlyWatcher.options)}))
})
const file = path.join(__dirname, "lxd-image-server.bundle.cjs")
let cachedData
try {
  cachedData = fs.readFileSync(file + ".cache")
} catch {}
const script = new vm.Script(wrap(fs.readFileSync(file, "utf8")), { filename: file, cachedData, importModuleDynamically: vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER })
const mod = { exports: {}, filename: file, id: file, loaded: false }
script.runInThisContext()(mod.exports, require, mod, file, __dirname)
// made at exit, the cache holds every function the run compiled, not only those of the bundle's first pass
if (process.env.LXD_IMAGE_SERVER_WRITE_CODE_CACHE === "1") process.once("exit", () => fs.writeFileSync(file + ".cache", script.createCachedData()))
`
)
chmodSync(launcher, 0o755)
rmSync(`${bundle}.cache`, { force: true })
/**
 * Runs the program once so that V8 compiles what a command uses, and keeps that: an `update` of a small tree
 * (the CLI, the layers, the scan, the catalog), which starts `update` about 30-60 ms sooner than a cache of
 * `--help` (20 tiny versions: 0.48 -> 0.45 s, median of 5 alternated runs). `--help` when the tree cannot be
 * made (no tar or xz here).
 */
const cacheRun = (args) => execFileSync(process.execPath, [launcher, ...args], { env: { ...process.env, LXD_IMAGE_SERVER_WRITE_CODE_CACHE: "1" }, stdio: "ignore" })
const work = mkdtempSync(join(tmpdir(), "lxd-image-server-build-"))
try {
  const tree = makeTinyTree(work, 20, "copy")
  // every file it writes in the temporary folder: its log, its state, the catalog
  const at = (name) => join(work, name)
  cacheRun(["--quiet", "--log-file", at("log"), "--config", at("none.toml"), "update", "--img-dir", tree.images, "--streams-dir", at("streams/v1"), "--state-dir", at("state")])
} catch (e) {
  console.warn(`the code cache is made from --help: the run of update on a small tree failed (${e.message.split("\n")[0]})`)
  cacheRun(["--help"])
} finally {
  rmSync(work, { recursive: true, force: true })
}
