package passthrough

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEntry: the five lines passthrough.c compares, in its order.
func TestEntry(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	if got := strings.Split(Entry(cfg, "", "/usr/bin/runc"), "\n"); len(got) != 6 || got[0] != "seccomp-shim-runtime-cache v1" || got[1] != cfg || got[2] != "absent" || got[3] != "PATH=" || got[4] != "/usr/bin/runc" {
		t.Errorf("entry for an absent config: %q", got)
	}
	if err := os.WriteFile(cfg, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if id := strings.Split(Entry(cfg, "/bin", "/usr/bin/runc"), "\n")[2]; len(strings.Fields(id)) != 5 {
		t.Errorf("identity %q: want dev, inode, size, mtime s and ns", id)
	}
}
