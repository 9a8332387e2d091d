#!/usr/bin/env bash
# Runs every fuzz target for the given time (default 30s). A crasher is
# written under the package's testdata/fuzz and replayed by `go test` from
# then on: commit it with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-30s}
grep -rl --include='*_test.go' '^func Fuzz' pkg internal | while read -r f; do
	pkg=./$(dirname "$f")
	for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | cut -d' ' -f2); do
		echo "== $pkg $target ($t)"
		go test -run='^$' -fuzz="^$target\$" -fuzztime="$t" "$pkg"
	done
done
