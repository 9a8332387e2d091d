#!/usr/bin/env bash
# Installs the Debian packages seccomp-shim's build, tests and demo need, if
# any is missing: runc (the real runtime); musl-tools (musl-gcc: seccomp-shim
# is built with musl); gcc and libc6-dev (seccomp-agent's C fast path, static
# glibc); libseccomp-dev (the test that checks pkg/unotify's syscall table
# against libseccomp, and its generator); busybox-static
# (the test rootfs); podman, conmon and uidmap (the hook tests); docker.io
# and containerd (the engine tests). Needs root only when something is
# missing.
set -euo pipefail
pkgs=(runc musl-tools libseccomp-dev pkg-config gcc libc6-dev busybox-static podman conmon uidmap docker.io containerd)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing Debian packages: ${missing[*]}; run as root: apt-get install ${missing[*]}" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
