#!/usr/bin/env bash
# Proves the tests are hermetic: the whole suite passes, once, while
#  (a) a seccomp-agent serves the DEFAULT socket /run/seccomp-shim/agent.sock
#      (with its default metrics address), as on a node, and
#  (b) /etc/seccomp-shim/config.toml exists and is not TOML, and the node's
#      profiles directory has a broken default.json,
# and afterwards nothing in /run/seccomp-shim or /etc/seccomp-shim was written
# by a test. Then (c) the tests that run 32-bit programs skip, and say why,
# when told the kernel has no 32-bit emulation.
#
# Whatever was at those paths is put aside first and put back on exit (trap),
# and the agent it started is stopped. A live agent already on the socket is
# left alone: it satisfies (a) as it is.
#
# HERMETIC_PRIVATE=1 does it all in a private mount namespace (tmpfs over
# both directories), so other work on the machine never sees the broken
# config or the agent. HERMETIC_PKGS="./pkg/..." tests fewer packages than
# ./... (for trying the script itself). Needs root, like the e2e tests. Run
# from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "hermetic-check: needs root" >&2; exit 1; }

run_dir=/run/seccomp-shim
etc_dir=/etc/seccomp-shim
socket=$run_dir/agent.sock
config=$etc_dir/config.toml
profiles=$etc_dir/profiles

if [ "${HERMETIC_PRIVATE:-}" = 1 ] && [ -z "${HERMETIC_IN_NS:-}" ]; then
	made=()
	for d in "$run_dir" "$etc_dir"; do
		[ -d "$d" ] || { mkdir -p "$d" && made+=("$d"); }
	done
	rc=0
	HERMETIC_IN_NS=1 unshare --mount --propagation private "$PWD/scripts/hermetic-check.sh" "$@" || rc=$?
	for d in "${made[@]}"; do rmdir "$d" 2>/dev/null || true; done
	exit "$rc"
fi
if [ -n "${HERMETIC_IN_NS:-}" ]; then
	mount -t tmpfs -o mode=0700 hermetic "$run_dir"
	mount -t tmpfs -o mode=0755 hermetic "$etc_dir"
fi

work=$(mktemp -d /tmp/hermetic-check.XXXXXX)
agent_pid=
made_dirs=()
made_profiles=
restore() {
	local rc=$?
	if [ -n "$agent_pid" ]; then
		kill "$agent_pid" 2>/dev/null || true
		wait "$agent_pid" 2>/dev/null || true
	fi
	rm -f "$config"
	[ -e "$work/saved-config" ] && mv -f "$work/saved-config" "$config"
	[ -n "$made_profiles" ] && rm -rf "$profiles"
	[ -e "$work/saved-profiles" ] && mv -f "$work/saved-profiles" "$profiles"
	[ -e "$work/saved-socket" ] && mv -f "$work/saved-socket" "$socket"
	for d in "${made_dirs[@]}"; do rmdir "$d" 2>/dev/null || true; done
	rm -rf "$work"
	exit "$rc"
}
trap restore EXIT
trap 'exit 130' INT TERM

for d in "$run_dir" "$etc_dir"; do
	[ -d "$d" ] || { mkdir -p "$d" && made_dirs+=("$d"); }
done

make --no-print-directory build >/dev/null
# (a) An agent on the default socket: the node's, if one answers; else ours.
if [ -S "$socket" ] && ss -xlH | awk '{print $5}' | grep -qxF "$socket"; then
	echo "hermetic-check: a node agent already serves $socket; using it"
else
	if [ -e "$socket" ] || [ -L "$socket" ]; then
		mv "$socket" "$work/saved-socket"
	fi
	printf '[audit]\nmode = "auto"\n' >"$work/agent.toml"
	args=(--config "$work/agent.toml" --audit-log "$work/audit.log")
	bin/seccomp-agent "${args[@]}" >"$work/agent.out" 2>&1 &
	agent_pid=$!
	for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done
	[ -S "$socket" ] || { echo "hermetic-check: the agent did not start:" >&2; cat "$work/agent.out" >&2; exit 1; }
	echo "hermetic-check: seccomp-agent (pid $agent_pid) serves $socket"
fi
# (b) A broken node config, and a broken node profile that would override
# the built-in default for anything reading the node's profiles directory.
if [ -e "$config" ] || [ -L "$config" ]; then
	mv "$config" "$work/saved-config"
fi
echo 'this is not toml [[' >"$config"
if [ -e "$profiles" ] || [ -L "$profiles" ]; then
	mv "$profiles" "$work/saved-profiles"
fi
made_profiles=1
mkdir "$profiles"
echo '{"defaultAction": "SCMP_ACT_EXPLODE", [' >"$profiles/default.json"
echo "hermetic-check: $config and $profiles/default.json are broken on purpose"

touch "$work/stamp"
sleep 1 # mtimes of what the tests write must be newer than the stamp
read -r -a pkgs <<<"${HERMETIC_PKGS:-./...}"
echo "hermetic-check: go test -count=1 ${pkgs[*]}"
if ! go test -count=1 "${pkgs[@]}" 2>&1 | tee "$work/test.log"; then
	echo "hermetic-check: FAIL: the suite fails next to a node agent and a broken node config" >&2
	exit 1
fi

# Nothing but our agent and our config may have changed there.
skip=(! -path "$run_dir" ! -path "$etc_dir" ! -path "$socket" ! -path "$config" ! -path "$profiles" ! -path "$profiles/default.json")
leaked=$(find "$run_dir" "$etc_dir" -newer "$work/stamp" "${skip[@]}" 2>/dev/null || true)
if [ -n "$leaked" ]; then
	echo "hermetic-check: FAIL: the tests wrote the node's files:" >&2
	echo "$leaked" >&2
	exit 1
fi
[ -z "$agent_pid" ] || kill -0 "$agent_pid" || { echo "hermetic-check: FAIL: the agent died during the tests" >&2; cat "$work/agent.out" >&2; exit 1; }

# (c) The 32-bit tests skip, and say why, where the kernel has no 32-bit
# emulation (simulated: the tests' helper honours the variable).
echo "hermetic-check: the 32-bit tests with SECCOMP_SHIM_TEST_ASSUME_NO_IA32=1"
SECCOMP_SHIM_TEST_ASSUME_NO_IA32=1 go test -count=1 -v -run 'TestArchitectures$|TestAuditDenied$|TestRun$' \
	./test/e2e/ ./test/e2e/harness/ >"$work/ia32.log" 2>&1 || { cat "$work/ia32.log"; echo "hermetic-check: FAIL: 32-bit tests without 32-bit emulation" >&2; exit 1; }
for t in 'TestArchitectures ' 'TestAuditDenied/32bit ' 'TestRun/32bit '; do
	grep -q -- "--- SKIP: $t" "$work/ia32.log" || { cat "$work/ia32.log"; echo "hermetic-check: FAIL: $t did not skip" >&2; exit 1; }
done
grep -q 'assumed off (SECCOMP_SHIM_TEST_ASSUME_NO_IA32=1)' "$work/ia32.log" || { echo "hermetic-check: FAIL: no reason given for the skips" >&2; exit 1; }
echo "hermetic-check: ok"
