package specfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// patch is what a caller does: read, patch, write.
func patch(path string, v json.RawMessage, keys ...string) (bool, error) {
	f, err := Read(path)
	if err != nil {
		return false, err
	}
	doc, err := SetPath(f.Data, v, keys...)
	if err != nil {
		return false, err
	}
	return f.WriteAtomic(doc)
}

func writeConfig(t *testing.T, data string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // bypass the umask
		t.Fatal(err)
	}
	return path
}

// checkDir fails unless path holds want and is the only entry in its directory.
func checkDir(t *testing.T, path, want string) {
	t.Helper()
	if got, err := os.ReadFile(path); err != nil || string(got) != want {
		t.Errorf("%s = %q, %v; want %q", path, got, err, want)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != filepath.Base(path) {
			t.Errorf("left behind %s", e.Name())
		}
	}
}

func TestWriteAtomic(t *testing.T) {
	path := writeConfig(t, runcSpec, 0o644)
	changed, err := patch(path, json.RawMessage(profile), "linux", "seccomp")
	if err != nil || !changed {
		t.Fatalf("patch = %v, %v", changed, err)
	}
	want := strings.Replace(runcSpec, oldSeccomp, newSeccomp, 1)
	checkDir(t, path, want)

	// A second run must not touch the file at all.
	old := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(path)
	changed, err = patch(path, json.RawMessage(profile), "linux", "seccomp")
	if err != nil || changed {
		t.Fatalf("second patch = %v, %v", changed, err)
	}
	after, _ := os.Stat(path)
	if !after.ModTime().Equal(old) || !os.SameFile(before, after) {
		t.Errorf("second patch touched the file: mtime %v", after.ModTime())
	}
	checkDir(t, path, want)
}

func TestWriteAtomicAgainAfterWrite(t *testing.T) {
	path := writeConfig(t, `{}`, 0o600)
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range []string{`{"a":1}`, `{"a":2}`} {
		if changed, err := f.WriteAtomic([]byte(data)); err != nil || !changed {
			t.Fatalf("WriteAtomic(%s) = %v, %v", data, changed, err)
		}
	}
	checkDir(t, path, `{"a":2}`)
}

func TestModePreserved(t *testing.T) {
	for _, mode := range []os.FileMode{0o600, 0o644, 0o640} {
		path := writeConfig(t, `{}`, mode)
		if _, err := patch(path, json.RawMessage(`{}`), "linux", "seccomp"); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode() != mode {
			t.Errorf("mode %v became %v (%v)", mode, fi.Mode(), err)
		}
	}
}

func TestOwnerPreserved(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	path := writeConfig(t, `{}`, 0o640)
	if err := os.Chown(path, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	if _, err := patch(path, json.RawMessage(`{}`), "linux", "seccomp"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1234 || st.Gid != 5678 || fi.Mode() != 0o640 {
		t.Errorf("owner %d:%d mode %v, want 1234:5678 -rw-r-----", st.Uid, st.Gid, fi.Mode())
	}
}

func TestMalformedLeftAlone(t *testing.T) {
	for name, data := range map[string]string{
		"truncated":        runcSpec[:len(runcSpec)/2],
		"empty":            ``,
		"array":            `[{"linux":{}}]`,
		"string":           `"{}"`,
		"duplicate key":    `{"linux":{},"hostname":"a","linux":{}}`,
		"trailing garbage": runcSpec + "x",
		"two objects":      `{"a":1}{"a":2}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := writeConfig(t, data, 0o644)
			_, err := patch(path, json.RawMessage(profile), "linux", "seccomp")
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("got %v, want an error naming %s", err, path)
			}
			checkDir(t, path, data)
		})
	}
}

func TestChangedSinceRead(t *testing.T) {
	for name, change := range map[string]func(path string) error{
		"rewritten in place": func(path string) error { return os.WriteFile(path, []byte(`{"other":"writer"}`), 0) },
		"replaced by rename": func(path string) error {
			// Same bytes and mtime: only the inode gives it away.
			fi, _ := os.Stat(path)
			tmp := path + ".new"
			if err := os.WriteFile(tmp, []byte(`{"other":"writer"}`), 0o644); err != nil {
				return err
			}
			if err := os.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil {
				return err
			}
			return os.Rename(tmp, path)
		},
		"deleted": os.Remove,
		"replaced by symlink": func(path string) error {
			os.WriteFile(path+".target", []byte(`{"other":"writer"}`), 0o644)
			os.Remove(path)
			return os.Symlink(filepath.Base(path)+".target", path)
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := writeConfig(t, `{"other":"writer"}`, 0o644)
			f, err := Read(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := change(path); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(path)
			changed, err := f.WriteAtomic([]byte(`{"ours":1}`))
			if err == nil || changed {
				t.Fatalf("WriteAtomic = %v, %v; want an error", changed, err)
			}
			if name != "deleted" && !errors.Is(err, ErrChanged) {
				t.Errorf("got %v, want ErrChanged", err)
			}
			after, _ := os.ReadFile(path)
			if string(after) != string(before) {
				t.Errorf("file became %q", after)
			}
			entries, _ := os.ReadDir(filepath.Dir(path))
			for _, e := range entries {
				if strings.Contains(e.Name(), "seccomp-shim") {
					t.Errorf("left behind %s", e.Name())
				}
			}
		})
	}
}

func TestReadOnlyDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	path := writeConfig(t, `{}`, 0o644)
	dir := filepath.Dir(path)
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	if _, err := patch(path, json.RawMessage(`{}`), "linux"); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("got %v, want an error naming %s", err, dir)
	}
	checkDir(t, path, `{}`)
}

func TestNotRegularRefused(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.json")
	if err := os.WriteFile(target, []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "config.json")
	if err := os.Symlink("real.json", link); err != nil {
		t.Fatal(err)
	}
	if _, err := patch(link, json.RawMessage(`{}`), "linux"); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("symlink: got %v", err)
	}
	if got, _ := os.ReadFile(target); string(got) != `{}` {
		t.Errorf("symlink target became %q", got)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("symlink replaced: %v %v", fi.Mode(), err)
	}

	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, dir} {
		if _, err := Read(p); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Read(%s) = %v", p, err)
		}
	}
	if _, err := Read(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
}

// A config.json is read whole into memory: one over MaxSize is refused
// before it is, one under it is read.
func TestReadSizeCap(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		size int
		ok   bool
	}{{"at the cap", MaxSize, true}, {"over the cap", MaxSize + 1, false}} {
		path := filepath.Join(dir, tc.name+".json")
		pad := tc.size - len(`{"a":""}`)
		if err := os.WriteFile(path, []byte(`{"a":"`+strings.Repeat("x", pad)+`"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Read(path)
		if tc.ok && err != nil || !tc.ok && (err == nil || !strings.Contains(err.Error(), "larger than") || !strings.Contains(err.Error(), path)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// An engine may move a bundle while the shim rewrites its config.json: a
// write that fails then must still remove its temporary file, wherever the
// directory went (95 of 300 such races left one before atomicfile worked
// through the directory's descriptor).
func TestRenamedBundleLeavesNoTemp(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	if err := os.Mkdir(a, 0o755); err != nil {
		t.Fatal(err)
	}
	const doc = "{\n\t\"ociVersion\": \"1.0.2\"\n}\n"
	if err := os.WriteFile(filepath.Join(a, "config.json"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for from, to := a, b; ; from, to = to, from {
			select {
			case <-stop:
				return
			default:
			}
			for os.Rename(from, to) != nil {
				select {
				case <-stop:
					return
				default:
				}
			}
		}
	}()
	writes, raced := 0, 0
	for i := 0; i < 300; i++ {
		for _, dir := range []string{a, b} {
			f, err := Read(filepath.Join(dir, "config.json"))
			if err != nil {
				continue // moved away under us
			}
			if _, err := f.WriteAtomic([]byte(fmt.Sprintf("{\"n\": %d}\n", i))); err == nil {
				writes++
			} else {
				raced++ // failed with its temp file made, or before
			}
		}
	}
	close(stop)
	<-done
	for _, dir := range []string{a, b} {
		es, _ := os.ReadDir(dir)
		for _, e := range es {
			if strings.HasPrefix(e.Name(), ".config.json.") {
				t.Errorf("left behind: %s", filepath.Join(dir, e.Name()))
			}
		}
	}
	t.Logf("%d of 600 writes went through, %d failed under a rename", writes, raced)
	if writes == 0 || raced == 0 {
		t.Fatalf("nothing raced: %d writes, %d failed under a rename", writes, raced)
	}
}
