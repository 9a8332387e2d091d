package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// within fails the test instead of hanging it when f blocks, as a read of
// a FIFO or of /dev/zero would.
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: still blocked after 20 s", what)
		return nil
	}
}

func TestConfigNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.toml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path     string
		explicit bool
		want     string
	}{
		{fifo, true, "not a regular file"},
		{fifo, false, "not a regular file"},
		{dir, false, "not a regular file"},
		{"/dev/zero", true, "not a regular file"},
	} {
		err := within(t, tc.path, func() error { _, err := LoadFile(tc.path, tc.explicit); return err })
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("%s (explicit %v): got %v, want an error naming it with %q", tc.path, tc.explicit, err, tc.want)
		}
	}
}

// "No config" is no file at all; a link to nothing is a mistake that must
// not silently give the built-in defaults.
func TestConfigDanglingLink(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "config.toml")
	if err := os.Symlink(filepath.Join(dir, "gone.toml"), link); err != nil {
		t.Fatal(err)
	}
	for _, explicit := range []bool{false, true} {
		if _, err := LoadFile(link, explicit); err == nil || !strings.Contains(err.Error(), link) || !strings.Contains(err.Error(), "dangling symlink") {
			t.Errorf("dangling config link (explicit %v): got %v", explicit, err)
		}
	}
	// The directory itself a dangling link: /etc/seccomp-shim -> nowhere.
	etc := filepath.Join(dir, "etc")
	if err := os.Symlink(filepath.Join(dir, "nowhere", "deeper"), etc); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(filepath.Join(etc, "config.toml"), false); err == nil || !strings.Contains(err.Error(), "dangling symlink") || !strings.Contains(err.Error(), etc) {
		t.Errorf("dangling config directory link: got %v", err)
	}
	// A link to a directory that exists, holding no config: no config.
	real := filepath.Join(dir, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good")
	if err := os.Symlink(real, good); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadFile(filepath.Join(good, "config.toml"), false); err != nil || c.Source != "built-in defaults" {
		t.Errorf("absent config under a linked directory: %v", err)
	}
	// No directory at all: no config.
	if c, err := LoadFile(filepath.Join(dir, "absent", "config.toml"), false); err != nil || c.Source != "built-in defaults" {
		t.Errorf("absent config directory: %v", err)
	}
}

func TestConfigTooBig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	data := []byte("# " + strings.Repeat("x", MaxConfigSize) + "\n")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(path, true); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized config: got %v", err)
	}
}

// Deep nesting overflowed the decoder's stack: a crash of every command,
// and of the agent on a live reload.
func TestConfigDeepNesting(t *testing.T) {
	for _, doc := range []string{
		"x = " + strings.Repeat("[", 400000) + strings.Repeat("]", 400000),
		"x = " + strings.Repeat("{a=", 200000) + "1" + strings.Repeat("}", 200000),
		// A multi-line string ends in up to two quotes of its own: what
		// follows is not in the string.
		`x = """a""""" ` + strings.Repeat("[", 400000),
		// Each part of a dotted key is a table: this ran out of memory.
		strings.Repeat("a.", 500000) + "a = 1",
		"[" + strings.Repeat("a.", 500000) + "a]",
		"x = " + strings.Repeat("{a.a.a.a = ", 20) + "1" + strings.Repeat("}", 20),
	} {
		_, err := ParseConfig("deep.toml", []byte(doc))
		if err == nil || !strings.Contains(err.Error(), "deep.toml") || !strings.Contains(err.Error(), "nested deeper than 64") || !errors.Is(err, ErrConfig) {
			t.Errorf("deep nesting: got %v", err)
		}
	}
	// Brackets in strings and comments are not nesting.
	deep := strings.Repeat("[", maxConfigDepth+1)
	for _, doc := range []string{
		`x = "` + deep + `"`, `x = '` + deep + `'`, "x = \"\"\"\n" + deep + "\"\"\"", "x = '''" + deep + "'''",
		"# " + deep + "\nx = 1", `x = "\"` + deep + `"`,
		"x = [" + strings.Repeat("1.5, ", 1000) + "2.5]",
		"[a.b.c.d]\nx = {y.z = [[1.5], [2.5]]}",
	} {
		_, err := ParseConfig("ok.toml", []byte(doc))
		if err == nil || !strings.Contains(err.Error(), "unknown keys ") || strings.Contains(err.Error(), "nested") {
			t.Errorf("%q: got %v, want only the unknown key", doc, err)
		}
	}
}

func TestProfileNotRegular(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.json")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "big.json"), []byte(`{"defaultAction":"SCMP_ACT_ERRNO"}`+strings.Repeat(" ", MaxProfileSize)), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"zero": "not a regular file", "fifo": "not a regular file", "big": "larger than"} {
		err := within(t, name, func() error { _, err := LoadProfile(dir, name); return err })
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), filepath.Join(dir, name+".json")) {
			t.Errorf("profile %s: got %v, want %q", name, err, want)
		}
	}
}
