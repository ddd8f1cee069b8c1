/** The URL `serve` prints for the clients' remote commands: one they can reach given where it listens. Pure. */
import { isIP } from "node:net"
import { hostname as machineHostname } from "node:os"
import { serverUrl, subjectNames } from "./Tls.js"

const anyAddress = new Set(["0.0.0.0", "::"])

/**
 * The first `--hostname` (or config `hostname`); else, when serve listens on one address (`--host 127.0.0.1`,
 * `::1`, `localhost`, a LAN address), that address, since the machine's hostname may lead elsewhere; else
 * (all addresses) the machine's hostname, the certificate's first name.
 */
export const serveUrl = (hostnames: ReadonlyArray<string>, listenHost: string, port: number, machine: string = machineHostname()): string => {
  const named = hostnames.length > 0 ? subjectNames(hostnames, machine)[0]! : undefined
  const listening = (isIP(listenHost) !== 0 && !anyAddress.has(listenHost)) || listenHost === "localhost" ? listenHost : undefined
  const host = named ?? listening ?? subjectNames([], machine)[0]!
  return serverUrl(isIP(host) === 6 ? `[${host}]` : host, port)
}
