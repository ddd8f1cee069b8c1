/** A self-signed leaf certificate for 127.0.0.1 and localhost, made with the host's openssl. */
import { execFileSync } from "node:child_process"
import { join } from "node:path"

export interface TestCert {
  readonly cert: string
  readonly key: string
}

export const makeTestCert = (dir: string): TestCert => {
  const cert = join(dir, "server.crt")
  const key = join(dir, "server.key")
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "7", "-sha256", "-subj", "/CN=localhost",
    "-keyout", key, "-out", cert,
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-addext", "basicConstraints=critical,CA:FALSE",
    "-addext", "keyUsage=critical,digitalSignature,keyEncipherment",
    "-addext", "extendedKeyUsage=serverAuth"
  ], { stdio: "ignore" })
  return { cert, key }
}
