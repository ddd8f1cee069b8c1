#!/usr/bin/env node
// Bundles the command line into one ESM file, dist/lxd-image-server.mjs: the `bin` of the package and the
// program the Debian package ships. One file loads in about 0.3 s where the module tree takes 0.9 s.
import { build } from "esbuild"
import { chmodSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const outfile = join(root, "dist", "lxd-image-server.mjs")
await build({
  entryPoints: [join(root, "src", "bin.ts")],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  legalComments: "none",
  minify: true,
  keepNames: true,
  logLevel: "warning",
  // some dependencies still call require() for node built-ins
  banner: { js: "import { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);" }
})
chmodSync(outfile, 0o755)
