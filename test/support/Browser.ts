/**
 * Headless Chromium (the Debian package), driven from its command line: the DOM after the page's scripts ran
 * (`--dump-dom`) and screenshots. No DevTools socket and no dependency: the page keeps its state (search,
 * sort) in the URL, so a URL is all a test needs to give it. Its background traffic (updates, sync,
 * prefetches) is turned off, so it talks to 127.0.0.1 only.
 */
import { execFile } from "node:child_process"
import { tempDir } from "./Images.js"

const flags = (profile: string) => [
  "--headless",
  // as root, and in containers, Chromium's sandbox cannot start
  "--no-sandbox",
  "--disable-gpu",
  "--ignore-certificate-errors",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-default-apps",
  "--disable-sync",
  "--no-first-run",
  "--dns-prefetch-disable",
  "--hide-scrollbars",
  `--user-data-dir=${profile}`,
  // run the page's scripts to the end before dumping or shooting
  "--virtual-time-budget=5000"
]

const chromium = (args: ReadonlyArray<string>) =>
  new Promise<string>((resolve, reject) => {
    execFile("chromium", [...flags(tempDir("lis-chromium-")), ...args], { timeout: 90_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      error ? reject(new Error(`chromium ${args.join(" ")} failed: ${error.message}\n${stderr.slice(-2000)}`)) : resolve(stdout)
    )
  })

/** The DOM of `url` once its scripts ran, serialized. */
export const dumpDom = (url: string): Promise<string> => chromium(["--dump-dom", url])

/** A PNG of `url` at this window size. */
export const screenshot = (url: string, file: string, width: number, height: number): Promise<string> =>
  chromium([`--screenshot=${file}`, `--window-size=${width},${height}`, url])
