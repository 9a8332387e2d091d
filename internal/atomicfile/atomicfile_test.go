package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestWrite(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		dir := t.TempDir()
		path := filepath.Join(dir, "f.json")
		fi, err := Write(path, []byte("one"), Options{Mode: 0o640 | os.ModeSetgid, Tag: "test", NoSync: noSync})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		st, _ := os.Stat(path)
		if string(got) != "one" || st.Mode() != 0o640|os.ModeSetgid || !os.SameFile(fi, st) {
			t.Errorf("wrote %q mode %v (same file as returned: %v)", got, st.Mode(), os.SameFile(fi, st))
		}
		if _, err := Write(path, []byte("two"), Options{Mode: 0o600, Tag: "test", NoSync: noSync}); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(path); string(got) != "two" {
			t.Errorf("replaced with %q", got)
		}
		if names := entries(t, dir); len(names) != 1 {
			t.Errorf("left behind: %v", names)
		}
	}
}

func TestWriteOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root gives files away")
	}
	path := filepath.Join(t.TempDir(), "f")
	if _, err := Write(path, []byte("x"), Options{Mode: 0o755 | os.ModeSetuid, Chown: true, UID: 1234, GID: 5678}); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	s := st.Sys().(*syscall.Stat_t)
	if s.Uid != 1234 || s.Gid != 5678 || st.Mode() != 0o755|os.ModeSetuid {
		t.Errorf("owner %d:%d mode %v; want 1234:5678, set-uid kept after the chown", s.Uid, s.Gid, st.Mode())
	}
}

// TestCheckFails: a refusal leaves the file as it was and no temporary file,
// even in a directory renamed meanwhile.
func TestCheckFails(t *testing.T) {
	root := t.TempDir()
	dir, moved := filepath.Join(root, "bundle"), filepath.Join(root, "moved")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("changed")
	_, err := Write(path, []byte("new"), Options{Mode: 0o644, Tag: "test", Check: func() error {
		if names := entries(t, dir); len(names) != 2 {
			t.Errorf("before the rename: %v, want the file and its temporary", names)
		}
		if err := os.Rename(dir, moved); err != nil {
			t.Fatal(err)
		}
		return refused
	}})
	if !errors.Is(err, refused) {
		t.Fatalf("Write = %v, want the check's error", err)
	}
	if got, _ := os.ReadFile(filepath.Join(moved, "config.json")); string(got) != "old" {
		t.Errorf("file now %q", got)
	}
	if names := entries(t, moved); len(names) != 1 {
		t.Errorf("left behind: %v", names)
	}
}

func TestWriteNoDirectory(t *testing.T) {
	if _, err := Write(filepath.Join(t.TempDir(), "missing", "f"), nil, Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Write = %v, want ErrNotExist", err)
	}
}
