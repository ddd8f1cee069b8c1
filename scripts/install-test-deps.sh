#!/usr/bin/env bash
# Installs, on Debian 12, every real tool the tests drive: nginx, the LXD 5.0.2 client and daemon,
# the Incus 6.0.4 client and daemon (incus-base, bookworm-backports), busybox-static (the rootfs of the image
# the round-trip tests launch), squashfs-tools, openssl, rsync, xz, debootstrap, and
# openssh-server (the mirror tests start their own sshd on 127.0.0.1), and headless Chromium for the catalog
# page.
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
  nginx-light openssl ca-certificates rsync xz-utils squashfs-tools qemu-utils openssh-server openssh-client busybox-static \
  lxd lxd-client \
  debootstrap dpkg-dev debhelper lintian fakeroot chromium >/dev/null
apt-get install -y -qq --no-install-recommends -t bookworm-backports incus-client incus-base >/dev/null
# nginx must not keep running from the package's own unit: the tests start their own.
(systemctl disable --now nginx 2>/dev/null || service nginx stop 2>/dev/null || true) >/dev/null
# nor the Incus daemon from its own: the round-trip tests start theirs with a folder of their own
(systemctl disable --now incus.socket incus 2>/dev/null || service incus stop 2>/dev/null || true) >/dev/null
# nor sshd from its own: the mirror tests start theirs on a free port
(systemctl disable --now ssh 2>/dev/null || service ssh stop 2>/dev/null || true) >/dev/null
echo "install-test-deps: done"
