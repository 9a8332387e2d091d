#!/usr/bin/env bash
# Container start (create+start+wait+delete of /bin/true, as containerd does
# it) through seccomp-shim vs runc, interleaved in one process; see
# BenchmarkStart in test/e2e/bench_test.go. Needs root. N iterations
# (default 40), COUNT repetitions (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run='^$' -bench='^BenchmarkStart$' -benchtime="${N:-40}x" -count="${COUNT:-3}" ./test/e2e/ |
	grep -E '^(Benchmark|goos|cpu)' | tr '\t' '\n' | sed 's/^ *//' | grep -v '^$'
