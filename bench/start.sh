#!/usr/bin/env bash
# Container start (create+start+wait+delete of /bin/true, as containerd does
# it) through seccomp-shim vs runc, interleaved in one process, bundles on a
# tmpfs and on the disk under TMPDIR; see BenchmarkStart in
# test/e2e/bench_test.go. No node agent takes part: the shim's config names
# a socket of its own that nobody serves. Needs root; about 2 minutes with
# the defaults: N iterations (default 30), COUNT repetitions (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "bundles on tmpfs, and on $(df --output=fstype "${TMPDIR:-/tmp}" | tail -1) under TMPDIR=${TMPDIR:-/tmp}"
go test -run='^$' -bench='^BenchmarkStart$' -benchtime="${N:-30}x" -count="${COUNT:-3}" ./test/e2e/ >"$out" || { cat "$out"; exit 1; }
grep -E '^(Benchmark|cpu)' "$out"
echo
echo "shim/runc, medians, the same filter reaching runc either way (target <= 1.05):"
awk '/^BenchmarkStart\// {
	split($1, n, "/"); sub(/-[0-9]+$/, "", n[2])
	for (i = 3; i < NF; i += 2) v[$(i+1)] = $i
	printf "  %-5s  default %.3fx (%6.1f vs %6.1f ms)   native %.3fx (%6.1f vs %6.1f ms)\n", n[2],
		v["shim/runc-default"], v["shim-default-ms"], v["runc-default-ms"],
		v["shim/runc-native"], v["shim-native-ms"], v["runc-native-ms"]
}' "$out"
