package harness

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/seccomp-shim/seccomp-shim/internal/childtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

func newRunc(t *testing.T) *Runtime {
	t.Helper()
	return &Runtime{Bin: RequireBinary(t, "runc"), Root: t.TempDir()}
}

// assertNoContainers also checks that no process, zombies included, is left
// as our child: as a subreaper we inherit every orphan below us.
func assertNoContainers(t *testing.T, rt *Runtime) {
	t.Helper()
	out, err := rt.Command(t.TempDir(), "list", "-q").CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("runc list: %v: containers left: %q", err, out)
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, _ := os.ReadFile(f)
		// pid (comm) state ppid ...
		if i := strings.LastIndexByte(string(b), ')'); i > 0 {
			if fields := strings.Fields(string(b[i+1:])); len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) {
				t.Errorf("process left behind: %s", b[:i+3])
			}
		}
	}
}

func TestRun(t *testing.T) {
	rt := newRunc(t)
	rootfs := Rootfs(t)
	for _, tc := range []struct {
		name   string
		args   []string
		stdout string
		stderr string
		code   int
	}{
		{"status", []string{"/bin/probe", "status"}, "Seccomp:\t0\nSeccomp_filters:\t0\n", "", 0},
		{"getpid", []string{"/bin/probe", "call", "getpid", "call", "reboot"}, "getpid ok\nreboot errno EPERM 1\n", "", 0},
		{"exit", []string{"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, "out\n", "err\n", 3},
		{"32bit", []string{"/bin/probe32", "call", "getpid", "call", "uname"}, "getpid ok\nuname ok\n", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.args[0] == "/bin/probe32" {
				childtest.RequireIA32(t)
			}
			res, err := rt.Run(t, "c-"+tc.name, NewBundle(t, rootfs, tc.args...))
			if err != nil {
				t.Fatal(err)
			}
			if res.Stdout != tc.stdout || res.Stderr != tc.stderr || res.ExitCode != tc.code {
				t.Errorf("got stdout %q stderr %q exit %d; want %q %q %d",
					res.Stdout, res.Stderr, res.ExitCode, tc.stdout, tc.stderr, tc.code)
			}
		})
	}
	assertNoContainers(t, rt)
}

func TestCreateFailure(t *testing.T) {
	rt := newRunc(t)
	bundle := NewBundle(t, Rootfs(t), "/bin/no-such-command")
	res, err := rt.Run(t, "broken", bundle)
	if err == nil {
		t.Fatalf("Run succeeded: %+v", res)
	}
	// runc reports it both on stderr and in log.json.
	if n := strings.Count(err.Error(), "stat /bin/no-such-command: no such file"); n != 2 {
		t.Errorf("error should quote runc's stderr and log.json:\n%v", err)
	}
	assertNoContainers(t, rt)
}

// The init is pid 1 of its namespace and ignores SIGKILL from inside it, so
// the signal comes from outside, as `docker kill` sends it.
func TestKilledInit(t *testing.T) {
	rt := newRunc(t)
	bundle := NewBundle(t, Rootfs(t), "/bin/sleep", "100")
	if err := rt.Create("sleeper", bundle); err != nil {
		t.Fatal(err)
	}
	defer rt.Delete("sleeper", bundle)
	if err := rt.Start("sleeper", bundle); err != nil {
		t.Fatal(err)
	}
	if out, err := rt.Command(bundle, "kill", "sleeper", "KILL").CombinedOutput(); err != nil {
		t.Fatalf("kill: %v: %s", err, out)
	}
	if code, err := Wait(bundle); err != nil || code != 137 {
		t.Errorf("Wait = %d, %v; want 137", code, err)
	}
	if err := rt.Delete("sleeper", bundle); err != nil {
		t.Error(err)
	}
	assertNoContainers(t, rt)
}

func TestEditConfigKeepsUnknownFields(t *testing.T) {
	RequireRoot(t)
	bundle := NewBundle(t, t.TempDir(), "true")
	EditConfig(t, bundle, func(m map[string]any) {
		m["x-unknown"] = map[string]any{"big": 1 << 60}
	})
	m := ReadConfig(t, bundle)
	if got := m["x-unknown"].(map[string]any)["big"]; got != json.Number("1152921504606846976") {
		t.Errorf("unknown field changed: %v", got)
	}
	if m["root"].(map[string]any)["readonly"] != true {
		t.Errorf("root not read-only: %v", m["root"])
	}
}
