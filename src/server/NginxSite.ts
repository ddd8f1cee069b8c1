/**
 * The nginx site, rendered from the folders (pure) and written beside nginx's own: absolute paths only,
 * TLS 1.2 and 1.3 (the clients refuse older), no listings, dotfiles hidden (staging uploads, the lock),
 * `streams/` and the catalog page (`/`, `/index.html`) never cached by proxies, and on the HTTP port only
 * `images/` (clients fetch files over HTTP first). A private site (see PrivateSite) has no HTTP port.
 */
import type { AccessForm } from "./PrivateAccess.js"
import { privateSiteParts } from "./PrivateSite.js"

export interface SiteOptions {
  readonly rootDir: string
  readonly cert: string
  readonly key: string
  readonly hostnames: ReadonlyArray<string>
  readonly port: number
  /** 0: no plain HTTP server. */
  readonly httpPort: number
  /** A private site: the form, the token (path, both) and the htpasswd file (basic, both). */
  readonly private?: { readonly form: AccessForm; readonly token: string | undefined; readonly htpasswd: string | undefined } | undefined
}

export const siteFileName = "lxd-image-server.conf"

export const renderSite = (o: SiteOptions): string => {
  const names = o.hostnames.length > 0 ? o.hostnames.join(" ") : "_"
  const p = privateSiteParts(o.private)
  const https = `${p.before}server {
    listen ${o.port} ssl;
    server_name ${names};

    ssl_certificate ${o.cert};
    ssl_certificate_key ${o.key};
    ssl_protocols TLSv1.2 TLSv1.3;

    root ${o.rootDir};
    autoindex off;
    # a symlink an uploader made to a file of someone else's (/etc/…) is not followed
    disable_symlinks if_not_owner from=$document_root;
${p.server}
    # uploads in progress (.20241127_10:00/), rsync temporaries and the writer lock
    location ~ /\\. {
        return 404;
    }

    location /streams/ {${p.inner}
        add_header Cache-Control "no-cache";
        gzip on;
        gzip_types application/json;
    }

    location /images/ {${p.inner}
    }

    # the catalog page, rewritten with every generation
    location = / {${p.inner}
        try_files /index.html =404;
        add_header Cache-Control "no-cache";
    }

    location = /index.html {${p.inner}
        add_header Cache-Control "no-cache";
    }

    location / {
        return 404;
    }
}
`
  const http =
    o.httpPort === 0 || o.private !== undefined
      ? ""
      : `
# Clients fetch image files over plain HTTP first, then fall back to HTTPS: serve the same files here.
server {
    listen ${o.httpPort};
    server_name ${names};

    root ${o.rootDir};
    autoindex off;
    disable_symlinks if_not_owner from=$document_root;

    location ~ /\\. {
        return 404;
    }

    location /images/ {
    }

    location / {
        return 404;
    }
}
`
  return `# Written by lxd-image-server init; edit freely, init never overwrites it.\n${p.header}${https}${http}`
}
