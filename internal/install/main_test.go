package install

import (
	"strings"
	"testing"
)

// The flags every command takes may follow it too, as they could before
// seccomp-install used urfave/cli: the same dry run either way.
func TestFlagsAfterCommand(t *testing.T) {
	root := nodeRoot(t, "v2-default.toml")
	bins := testBins(t)
	before := snapshotTimes(t, root)
	want, code := run(t, "--root", root, "--bin", bins, "--dry-run", "install")
	if code != 0 || !strings.Contains(want, "would update") {
		t.Fatalf("flags first: %d\n%s", code, want)
	}
	for _, args := range [][]string{
		{"install", "--root", root, "--bin", bins, "--dry-run"},
		{"--root", root, "install", "--bin", bins, "--dry-run"},
	} {
		if got, code := run(t, args...); code != 0 || got != want {
			t.Errorf("%q: %d\n%s\nwant\n%s", args, code, got, want)
		}
	}
	diffSnapshots(t, "dry runs", snapshotTimes(t, root), before)
}
