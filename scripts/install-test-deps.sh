#!/usr/bin/env bash
# Installs, on Debian 12, every real tool the tests drive: nginx, the LXD 5.0.2 client and daemon,
# the Incus 6.0.4 client and daemon (incus-base, bookworm-backports), squashfs-tools, openssl, rsync, xz,
# debootstrap, openssh-server (the mirror tests start their own sshd on 127.0.0.1), headless Chromium for the
# catalog page, incus-simplestreams (incus-extra), busybox-static (the rootfs of the containers the daemons
# launch) and prometheus-node-exporter (its textfile collector reads what `watch --metrics-file` writes).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" != 0 ]; then echo "install-test-deps: run as root" >&2; exit 1; fi
backports=/etc/apt/sources.list.d/bookworm-backports.sources
if [ ! -f "$backports" ]; then
  cat >"$backports" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  nginx-light openssl ca-certificates rsync xz-utils zstd bzip2 squashfs-tools qemu-utils openssh-server openssh-client \
  lxd lxd-client \
  debootstrap dpkg-dev debhelper lintian fakeroot chromium busybox-static prometheus-node-exporter >/dev/null
# incus-extra: incus-simplestreams, which makes the upstream tree the sync tests copy
apt-get install -y -qq --no-install-recommends -t bookworm-backports incus-client incus-base incus-extra >/dev/null
# nginx must not keep running from the package's own unit: the tests start their own.
(systemctl disable --now nginx 2>/dev/null || service nginx stop 2>/dev/null || true) >/dev/null
# nor the Incus daemon from its own: the round-trip tests start theirs with a folder of their own
(systemctl disable --now incus.socket incus 2>/dev/null || service incus stop 2>/dev/null || true) >/dev/null
# nor sshd from its own: the mirror tests start theirs on a free port
(systemctl disable --now ssh 2>/dev/null || service ssh stop 2>/dev/null || true) >/dev/null
# nor node-exporter (its port 9100): the metrics test starts one on 127.0.0.1 over the textfile of `watch`
(systemctl disable --now prometheus-node-exporter 2>/dev/null || service prometheus-node-exporter stop 2>/dev/null || true) >/dev/null
echo "install-test-deps: done"
