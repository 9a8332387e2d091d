package passthrough

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestRemember writes the cache as the C side trusts it: root's, 0600,
// nothing left beside it, and not rewritten when unchanged.
func TestRemember(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("Remember writes only as root")
	}
	dir := filepath.Join(t.TempDir(), "run")
	path := filepath.Join(dir, "runtime.cache")
	if err := Remember(path, "/nonexistent/config.toml", "/usr/bin", "/usr/bin/runc"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode() != 0o600 || string(got) != Entry("/nonexistent/config.toml", "/usr/bin", "/usr/bin/runc") {
		t.Errorf("cache: uid %d mode %v content %q", st.Uid, fi.Mode(), got)
	}
	if err := Remember(path, "/nonexistent/config.toml", "/usr/bin", "/usr/bin/runc"); err != nil {
		t.Fatal(err)
	}
	again, _ := os.Stat(path)
	if !os.SameFile(fi, again) {
		t.Error("an unchanged entry was rewritten")
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("left behind: %v", es)
	}
}
