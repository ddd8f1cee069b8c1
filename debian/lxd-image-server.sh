#!/bin/sh
# lxd-image-server, on the Node.js runtime the package carries.
exec /usr/lib/lxd-image-server/node /usr/lib/lxd-image-server/lxd-image-server.cjs "$@"
