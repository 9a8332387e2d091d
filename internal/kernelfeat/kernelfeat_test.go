package kernelfeat

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// The probe is what its comment says: a static i386 executable.
func TestProbeIsI386(t *testing.T) {
	f, err := elf.NewFile(bytes.NewReader(probe32()))
	if err != nil {
		t.Fatal(err)
	}
	if f.Class != elf.ELFCLASS32 || f.Machine != elf.EM_386 || f.Type != elf.ET_EXEC || len(f.Progs) != 1 {
		t.Errorf("probe: class %v machine %v type %v, %d program headers", f.Class, f.Machine, f.Type, len(f.Progs))
	}
}

// Each outcome of running the probe, without needing a kernel that has it:
// ENOEXEC is "off", a wrong exit or another error is "can't tell".
func TestIA32Outcomes(t *testing.T) {
	for _, c := range []struct {
		name        string
		exit        int
		err         error
		off, unsure bool
	}{
		{"runs", probeExit, nil, false, false},
		{"exec format error", 0, unix.ENOEXEC, true, false},
		{"memfd refused", 0, unix.EACCES, false, true},
		{"wrong exit", 1, nil, false, true},
	} {
		err := ia32(func([]byte) (int, error) { return c.exit, c.err })
		if off := errors.Is(err, ErrNotSupported); off != c.off || (err != nil && !off) != c.unsure {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// On this machine the probe answers, and the cached answer is the same,
// kept for the boot and believed the second time.
func TestIA32Cached(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the probe is for x86_64")
	}
	want := IA32()
	if want != nil && !errors.Is(want, ErrNotSupported) {
		t.Fatalf("IA32: %v", want)
	}
	dir := filepath.Join(t.TempDir(), "run")
	for i := 0; i < 2; i++ {
		if got := IA32Cached(dir); (got == nil) != (want == nil) {
			t.Fatalf("IA32Cached (%d) = %v, IA32 = %v", i, got, want)
		}
	}
	if os.Geteuid() != 0 {
		return
	}
	path := filepath.Join(dir, iaCacheName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A cache that says the opposite is believed: it is what was probed.
	flip := bytes.Replace(b, []byte(" on\n"), []byte(" off\n"), 1)
	if want != nil {
		flip = bytes.Replace(b, []byte(" off\n"), []byte(" on\n"), 1)
	}
	if err := os.WriteFile(path, flip, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := IA32Cached(dir); (got == nil) == (want == nil) {
		t.Errorf("a cached answer was not used: %v", got)
	}
	// Another boot's, or a file others can write, is not.
	for _, c := range []struct {
		data []byte
		mode os.FileMode
	}{{bytes.Replace(flip, []byte(" v1 "), []byte(" v1 x"), 1), 0o600}, {flip, 0o622}} {
		if err := os.WriteFile(path, c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, c.mode); err != nil {
			t.Fatal(err)
		}
		if got := IA32Cached(dir); (got == nil) != (want == nil) {
			t.Errorf("cache %q mode %v believed: %v", c.data, c.mode, got)
		}
	}
}

// The other probes answer yes or "not supported" here, never "can't tell".
func TestNotifyFeatures(t *testing.T) {
	for name, probe := range map[string]func() error{"UserNotif": UserNotif, "SyncWakeUp": SyncWakeUp, "RecvWakesAtExit": RecvWakesAtExit} {
		if err := probe(); err != nil && !errors.Is(err, ErrNotSupported) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
