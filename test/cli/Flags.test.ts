/**
 * A flag is held to the rule its config key is held to: a value the config file refuses is refused on the
 * command line too, before anything is written (a hostname goes into the nginx site and the certificate).
 */
import { describe, expect, it } from "@effect/vitest"
import { existsSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { runBinAsync } from "../support/Bin.js"
import { tempDir } from "../support/Images.js"

describe("flags held to their config key's rule", () => {
  it("refuses a hostname that is no DNS name or address, a port out of range, a negative settle and a zero reconcile interval, writing nothing", async () => {
    const base = tempDir("lis-flags-")
    const config = join(base, "config.toml")
    const init = (...more: ReadonlyArray<string>) =>
      runBinAsync(["--config", config, "--log-file", join(base, "log"), "init", "--root-dir", join(base, "www"), "--ssl-dir", join(base, "ssl"), "--nginx-dir", join(base, "nginx"), ...more])
    const injected = await init("--hostname", "a.example; location /etc/ { alias /etc/; } server_name b.example")
    expect(injected.code).toBe(2)
    expect(injected.stderr).toContain("--hostname: 'a.example; location /etc/ { alias /etc/; } server_name b.example' is not a DNS name")
    expect(existsSync(config)).toBe(false)
    expect(existsSync(join(base, "ssl"))).toBe(false)
    expect(existsSync(join(base, "nginx"))).toBe(false)
    const port = await init("--port", "99999")
    expect(port.code).toBe(2)
    expect(port.stderr).toContain("--port: Expected")
    const watch = (...more: ReadonlyArray<string>) =>
      runBinAsync(["--config", config, "--log-file", join(base, "log"), "watch", "--img-dir", join(base, "www", "images"), "--streams-dir", join(base, "www", "streams", "v1"), "--state-dir", join(base, "state"), ...more])
    const settle = await watch("--settle", "-1")
    expect(settle.code).toBe(2)
    expect(settle.stderr).toContain("--settle: Expected")
    const reconcile = await watch("--reconcile-interval", "0")
    expect(reconcile.code).toBe(2)
    expect(reconcile.stderr).toContain("--reconcile-interval: Expected")
    // the config file is held to the same hostname rule
    writeFileSync(config, 'hostname = ["ok.example", "bad host;"]\n')
    const file = await init()
    expect(file.code).not.toBe(0)
    expect(file.stderr).toContain(`config file ${config}, line 1: hostname.1: 'bad host;' is not a DNS name`)
    // good names pass: DNS names, a wildcard, addresses
    writeFileSync(config, 'hostname = ["images.example.com", "*.example.org", "vm", "127.0.0.1", "::1"]\n')
    expect((await runBinAsync(["--config", config, "--log-file", join(base, "log"), "status", "--img-dir", join(base, "www", "images"), "--streams-dir", join(base, "www", "streams", "v1")])).stderr).not.toContain("config file")
  }, 60_000)
})
