#!/usr/bin/env bash
# The main job in one run: a container started through seccomp-shim, exactly
# as containerd calls runc, gets the node's profile although its bundle asks
# for none, and a syscall that profile denies fails. Needs root (make demo
# installs what it needs first).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (containers need it): sudo make demo" >&2; exit 1; }
shim=$PWD/bin/seccomp-shim
work=$(mktemp -d /tmp/seccomp-shim-demo.XXXXXX)
cleanup() {
	runc --root "$work/state" delete --force demo >/dev/null 2>&1 || true
	[ -n "${agent:-}" ] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

echo "== building a tiny rootfs (busybox-static and a syscall probe)"
mkdir -p "$work/bundle/rootfs/bin" "$work/bundle/rootfs/proc" "$work/bundle/rootfs/dev" "$work/bundle/rootfs/sys"
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
ln -s busybox "$work/bundle/rootfs/bin/sh"
CGO_ENABLED=0 go build -trimpath -o "$work/bundle/rootfs/bin/probe" ./test/e2e/probe

# A bundle as `runc spec` writes it: no seccomp profile at all, like
# `docker run --security-opt seccomp=unconfined`.
(cd "$work/bundle" && runc spec)
sed -i -e 's/"terminal": true/"terminal": false/' \
	-e 's|"sh"$|"/bin/probe", "status", "call", "getpid", "call", "keyctl"|' "$work/bundle/config.json"

# The notify agent: the shim routes every syscall the profile denies to it,
# it answers with the same errno and writes the audit log.
"$PWD/bin/seccomp-agent" --socket "$work/run/agent.sock" --audit-log "$work/audit.log" --metrics "" 2>"$work/agent.log" &
agent=$!
until [ -S "$work/run/agent.sock" ]; do sleep 0.05; done

# The node's policy: no rules, so the built-in default applies (Docker's
# default profile for a container without one, audited while the agent
# answers), and decisions are logged.
cat >"$work/config.toml" <<TOML
[log]
file = "$work/seccomp-shim.log"
[audit]
socket = "$work/run/agent.sock"
TOML
export SECCOMP_SHIM_CONFIG=$work/config.toml

run() { # like containerd: global flags, create --bundle, start, delete
	local rt=$1
	"$rt" --root "$work/state" --log "$work/log.json" --log-format json create --bundle "$work/bundle" --pid-file "$work/init.pid" demo
	"$rt" --root "$work/state" --log "$work/log.json" --log-format json start demo
	until "$rt" --root "$work/state" state demo | grep -q '"status": "stopped"'; do sleep 0.05; done
	"$rt" --root "$work/state" --log "$work/log.json" --log-format json delete demo
}

echo
echo "== plain runc: no filter, keyctl reaches the kernel"
run runc
echo
echo "== seccomp-shim: Docker's default profile injected; keyctl denied with EPERM and audited, getpid allowed"
run "$shim"
echo
echo "== what the shim decided ($work/seccomp-shim.log)"
cat "$work/seccomp-shim.log"
echo
sleep 1.2 # the agent's writer flushes every second
echo "== the audit log ($work/audit.log)"
cat "$work/audit.log"
echo
"$PWD/bin/seccomp-agent" summary "$work/audit.log"
echo
echo "== the profile now in the bundle's config.json (every other field is untouched)"
grep -o '"defaultAction": *"[A-Z_]*"' "$work/bundle/config.json"
grep -o '"SCMP_ARCH_[A-Z0-9_]*"' "$work/bundle/config.json" | sort -u | tr '\n' ' '; echo
