package policy

import (
	"os"
	"path/filepath"
	"testing"
)

// An empty or relative PATH element would find runc in the working
// directory, which for the shim is the container's bundle.
func TestFindRuntimeOnlyAbsolutePATH(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	for _, d := range []string{bin, filepath.Join(dir, "rel")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{filepath.Join(dir, "runc"), filepath.Join(dir, "rel", "runc"), filepath.Join(bin, "runc")} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	c := DefaultConfig()
	c.Runtime.Path = StringList{"runc"}
	for _, path := range []string{":" + bin, bin + "::", ".:" + bin, "rel:" + bin, bin} {
		got, err := c.FindRuntime(path, nil)
		if err != nil || got != filepath.Join(bin, "runc") {
			t.Errorf("PATH %q: got %q, %v; want %s", path, got, err, filepath.Join(bin, "runc"))
		}
	}
	if got, err := c.FindRuntime("rel:.", nil); err == nil {
		t.Errorf("PATH with only relative elements found %q", got)
	}
}
