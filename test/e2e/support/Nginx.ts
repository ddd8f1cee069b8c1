/**
 * A real nginx, started by the test as a child process (`daemon off`), with its own main config, logs and
 * temp paths in a temp folder, serving a web root over TLS 1.2/1.3 on 127.0.0.1.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { freePort, waitForPort } from "./Net.js"

export interface RunningNginx {
  readonly port: number
  readonly url: string
  readonly dir: string
  readonly stop: () => Promise<void>
}

/** A main nginx.conf for a test: `http { … include <site> }` or an inline server block. */
export const mainConfig = (dir: string, httpBody: string): string => `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 64; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
${httpBody}
}
`

export const runNginx = async (dir: string, config: string, port: number): Promise<RunningNginx> => {
  mkdirSync(join(dir, "tmp"), { recursive: true })
  const conf = join(dir, "nginx.conf")
  writeFileSync(conf, config)
  const args = ["-p", dir, "-c", conf, "-e", join(dir, "error.log")]
  execFileSync("nginx", [...args, "-t"], { stdio: "pipe" })
  const child: ChildProcess = spawn("nginx", args, { stdio: "ignore" })
  await waitForPort(port)
  return {
    port,
    url: `https://127.0.0.1:${port}`,
    dir,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once("exit", () => resolve())
        child.kill("SIGQUIT")
      })
  }
}

/** nginx serving `root` over TLS the way production does (TLS 1.2/1.3, no listings, no-cache on streams/). */
export const startStaticNginx = async (dir: string, root: string, tls: { cert: string; key: string }) => {
  const port = await freePort()
  return runNginx(dir, mainConfig(dir, `
  server {
    listen 127.0.0.1:${port} ssl;
    server_name localhost;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    root ${root};
    autoindex off;
    location /streams/ { add_header Cache-Control no-cache; }
  }`), port)
}
