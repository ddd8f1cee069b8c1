/**
 * The self-signed certificate, made with the host's openssl and never with the network: SANs for every
 * hostname asked for, the machine's hostname, localhost and 127.0.0.1; a leaf (CA:FALSE) with a random serial;
 * the key readable by its owner only. An existing certificate is never overwritten.
 */
import { Command, CommandExecutor, FileSystem, Path } from "@effect/platform"
import { randomBytes, X509Certificate } from "node:crypto"
import { isIP } from "node:net"
import { hostname as machineHostname } from "node:os"
import { Data, Effect } from "effect"

export class TlsError extends Data.TaggedError("TlsError")<{ readonly reason: string }> {
  override get message() {
    return this.reason
  }
}

export interface CertificateFiles {
  readonly cert: string
  readonly key: string
}

export const certificateFiles = (path: Path.Path, sslDir: string): CertificateFiles => ({
  cert: path.join(path.resolve(sslDir), "lxd-image-server.crt"),
  key: path.join(path.resolve(sslDir), "lxd-image-server.key")
})

/** The names the certificate is for, de-duplicated, the first one also its CN. Pure. */
export const subjectNames = (hostnames: ReadonlyArray<string>, machine: string = machineHostname()) => [
  ...new Set([...hostnames, machine, "localhost", "127.0.0.1"].map((h) => h.trim().toLowerCase()).filter((h) => h !== ""))
]

export const subjectAltName = (names: ReadonlyArray<string>) =>
  names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(",")

/** "AB:CD:…" SHA-256 fingerprint of a PEM certificate. */
export const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256

/** Makes the certificate unless one is there; returns whether it made it. */
export const ensureCertificate = (sslDir: string, hostnames: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const files = certificateFiles(path, sslDir)
    const fail = (reason: string) => new TlsError({ reason })
    if ((yield* fs.exists(files.cert).pipe(Effect.orElseSucceed(() => false))) && (yield* fs.exists(files.key).pipe(Effect.orElseSucceed(() => false)))) {
      return { ...files, created: false }
    }
    yield* fs.makeDirectory(path.dirname(files.cert), { recursive: true, mode: 0o755 }).pipe(Effect.mapError((e) => fail(`cannot make ${path.dirname(files.cert)}: ${e.message}`)))
    const names = subjectNames(hostnames)
    const command = Command.make(
      "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-days", "3650", "-sha256", "-subj", `/CN=${names[0]}`,
      "-set_serial", `0x${randomBytes(16).toString("hex").replace(/^[89a-f]/, "1")}`,
      "-addext", `subjectAltName=${subjectAltName(names)}`,
      "-addext", "basicConstraints=critical,CA:FALSE",
      "-addext", "keyUsage=critical,digitalSignature",
      "-addext", "extendedKeyUsage=serverAuth",
      "-keyout", files.key, "-out", files.cert
    )
    const executor = yield* CommandExecutor.CommandExecutor
    const code = yield* executor.exitCode(command.pipe(Command.stderr("pipe"), Command.stdout("pipe"))).pipe(
      Effect.mapError((e) => fail(`cannot run openssl: ${e.message}`))
    )
    if (code !== 0) return yield* Effect.fail(fail(`openssl could not make the certificate in ${sslDir} (exit ${code})`))
    yield* fs.chmod(files.key, 0o600).pipe(Effect.mapError((e) => fail(e.message)))
    yield* fs.chmod(files.cert, 0o644).pipe(Effect.mapError((e) => fail(e.message)))
    return { ...files, created: true }
  })

/** A certificate that signed itself (what `init` and `serve` make): clients must be given it to pin. */
export const isSelfSigned = (pem: string): boolean => {
  try {
    const cert = new X509Certificate(pem)
    // not checkIssued: it also asks for keyCertSign, which a leaf like ours rightly lacks
    return cert.issuer === cert.subject && cert.verify(cert.publicKey)
  } catch {
    return false
  }
}

/** The two command-line clients and where each reads pinned certificates from. */
export type Client = "lxc" | "incus"
export const clientConfigDirs: Readonly<Record<Client, string>> = { lxc: "~/.config/lxc", incus: "~/.config/incus" }

/** Where a client pins the certificate of a remote: `servercerts/<remote>.crt` in its config folder. */
export const pinnedCertPath = (client: Client, remote: string) => `${clientConfigDirs[client]}/servercerts/${remote}.crt`

/** Adding the server as a simplestreams remote (clients accept https only). */
export const remoteAddCommand = (client: Client, remote: string, url: string) =>
  `${client} remote add ${remote} ${url} --protocol simplestreams --public`

/** The lines that tell a person how to add this server as a remote, pin included. */
export const remoteInstructions = (url: string, pem: string, certPath: string, remote = "myimages") => [
  `certificate: ${certPath}`,
  `SHA-256 fingerprint: ${fingerprintOf(pem)}`,
  "",
  "LXD:",
  `  mkdir -p ${clientConfigDirs.lxc}/servercerts && cp ${certPath} ${pinnedCertPath("lxc", remote)}`,
  `  ${remoteAddCommand("lxc", remote, url)}`,
  "Incus:",
  `  mkdir -p ${clientConfigDirs.incus}/servercerts && cp ${certPath} ${pinnedCertPath("incus", remote)}`,
  `  ${remoteAddCommand("incus", remote, url)}`
]

/** The URL clients add as the remote: the default HTTPS port is left out, as people write it. */
export const serverUrl = (host: string, port: number) => `https://${host}${port === 443 ? "" : `:${port}`}`
