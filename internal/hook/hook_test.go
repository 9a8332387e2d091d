package hook_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/internal/hook"
	"github.com/seccomp-shim/seccomp-shim/internal/inject"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
)

// spec is a podman-style spec with a field runtime-spec doesn't know.
const spec = `{
	"ociVersion": "1.0.2-dev",
	"process": {
		"args": [
			"sh"
		],
		"cwd": "/",
		"xFuture": 1.50
	},
	"root": {
		"path": "rootfs"
	},
	"linux": {
		"namespaces": [
			{
				"type": "pid"
			}
		]
	}
}
`

type env struct {
	config, log string
	cfg         *policy.Config
}

// setup writes a config that names its own log file, no profiles directory
// and an agent socket where nothing listens, so nothing outside the test's
// directory is read or dialed.
func setup(t *testing.T) env {
	t.Helper()
	dir := t.TempDir()
	e := env{config: filepath.Join(dir, "config.toml"), log: filepath.Join(dir, "hook.log")}
	data := "[profiles]\ndir = \"\"\n[log]\nfile = \"" + e.log + "\"\n[audit]\nsocket = \"" + filepath.Join(dir, "agent.sock") + "\"\n"
	if err := os.WriteFile(e.config, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := policy.LoadFile(e.config, true)
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = cfg
	return e
}

// noEnv is a hook's environment under podman and CRI-O: empty.
func noEnv(string) string { return "" }

type result struct {
	code           int
	stdout, stderr string
}

func run(getenv func(string) string, stdin io.Reader, args ...string) result {
	var stdout, stderr bytes.Buffer
	h := &hook.Hook{
		Args:   append([]string{"seccomp-hook"}, args...),
		Getenv: getenv, Stdin: stdin, Stdout: &stdout, Stderr: &stderr,
	}
	code := h.Run()
	return result{code, stdout.String(), stderr.String()}
}

// logLines decodes the config's log file.
func logLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestPrecreate(t *testing.T) {
	e := setup(t)
	want, _, err := inject.Spec(e.cfg, []byte(spec), "", "spec", inject.Reach(e.cfg))
	if err != nil {
		t.Fatal(err)
	}
	if string(want) == spec {
		t.Fatal("the policy changes nothing: the test proves nothing")
	}
	r := run(noEnv, strings.NewReader(spec), "--config", e.config, "precreate")
	if r.code != 0 || r.stdout != string(want) || r.stderr != "" {
		t.Errorf("precreate = %d, stdout equal: %v, stderr %q", r.code, r.stdout == string(want), r.stderr)
	}
	lines := logLines(t, e.log)
	if len(lines) != 1 || lines[0]["stage"] != "precreate" || lines[0]["action"] != policy.ActionInjected || lines[0]["level"] != "info" {
		t.Errorf("log: %v", lines)
	}

	// Its own output is what the policy wants already.
	if r := run(noEnv, strings.NewReader(string(want)), "--config", e.config, "precreate"); r.code != 0 || r.stdout != string(want) {
		t.Errorf("precreate of its output = %d, changed: %v, %q", r.code, r.stdout != string(want), r.stderr)
	}

	// Where an environment is passed, SECCOMP_SHIM_CONFIG works too.
	getenv := func(k string) string {
		if k == policy.ConfigEnv {
			return e.config
		}
		return ""
	}
	if r := run(getenv, strings.NewReader(spec), "precreate"); r.code != 0 || r.stdout != string(want) {
		t.Errorf("precreate with %s = %d, %q", policy.ConfigEnv, r.code, r.stderr)
	}
}

func TestPrecreateErrors(t *testing.T) {
	e := setup(t)
	for name, tc := range map[string]struct {
		args  []string
		stdin string
		want  []string
	}{
		"truncated spec": {[]string{"--config", e.config, "precreate"}, spec[:40], []string{"seccomp-hook precreate: spec on stdin: not a valid OCI spec", "unexpected end of JSON input"}},
		"empty spec":     {[]string{"--config", e.config, "precreate"}, "", []string{"spec on stdin"}},
		"missing config": {[]string{"--config", e.config + ".missing", "precreate"}, spec, []string{e.config + ".missing", "no such file"}},
		"bad annotation": {[]string{"--config", e.config, "precreate"},
			strings.Replace(spec, `"ociVersion"`, `"annotations": {"seccomp-shim.io/profile": "../../etc/passwd"}, "ociVersion"`, 1),
			[]string{"../../etc/passwd", "not a profile name"}},
	} {
		r := run(noEnv, strings.NewReader(tc.stdin), tc.args...)
		if r.code != 1 || r.stdout != "" {
			t.Errorf("%s: code %d, stdout %q", name, r.code, r.stdout)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: stderr %q lacks %q", name, r.stderr, w)
			}
		}
	}
	// Errors go to the log too: hook stderr is often swallowed.
	for _, l := range logLines(t, e.log) {
		if l["level"] != "error" || !strings.HasPrefix(l["msg"].(string), "seccomp-hook precreate: ") {
			t.Errorf("log line %v", l)
		}
	}
}

// bundle writes a bundle holding config and returns its state on stdin.
func bundle(t *testing.T, config []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), config, 0o644); err != nil {
		t.Fatal(err)
	}
	state, _ := json.Marshal(map[string]any{
		"ociVersion": "1.0.2", "id": "c1", "status": "creating", "pid": 4242, "bundle": dir,
		"annotations": map[string]string{"x": "y"},
	})
	return string(state)
}

func TestCheckStages(t *testing.T) {
	e := setup(t)
	prepared, _, err := inject.Spec(e.cfg, []byte(spec), "c1", "spec", inject.Reach(e.cfg))
	if err != nil {
		t.Fatal(err)
	}
	good, bad := bundle(t, prepared), bundle(t, []byte(spec))
	for _, stage := range []string{"createRuntime", "createContainer", "prestart"} {
		if r := run(noEnv, strings.NewReader(good), "--config", e.config, stage); r.code != 0 || r.stderr != "" || r.stdout != "" {
			t.Errorf("%s with the policy's profile = %d, %q", stage, r.code, r.stderr)
		}
		r := run(noEnv, strings.NewReader(bad), "--config", e.config, stage)
		if r.code != 1 || !strings.Contains(r.stderr, hook.ErrPolicyMismatch.Error()) || !strings.Contains(r.stderr, "c1") {
			t.Errorf("%s without seccomp = %d, %q", stage, r.code, r.stderr)
		}
	}

	var st specs.State
	if err := json.Unmarshal([]byte(bad), &st); err != nil {
		t.Fatal(err)
	}
	if _, err := hook.Verify(e.cfg, st); !errors.Is(err, hook.ErrPolicyMismatch) {
		t.Errorf("Verify = %v", err)
	}

	if r := run(noEnv, strings.NewReader("{"), "--config", e.config, "createRuntime"); r.code != 1 || !strings.Contains(r.stderr, "state on stdin") {
		t.Errorf("createRuntime with a bad state = %d, %q", r.code, r.stderr)
	}
}

func TestRecordStages(t *testing.T) {
	e := setup(t)
	// Recording needs no bundle: at poststop it may be gone.
	state := `{"ociVersion":"1.0.2","id":"c9","status":"stopped","bundle":"/nonexistent"}`
	for _, stage := range []string{"startContainer", "poststart", "poststop"} {
		if r := run(noEnv, strings.NewReader(state), "--config", e.config, stage); r.code != 0 || r.stderr != "" {
			t.Errorf("%s = %d, %q", stage, r.code, r.stderr)
		}
	}
	lines := logLines(t, e.log)
	if len(lines) != 3 {
		t.Fatalf("log: %v", lines)
	}
	last := lines[2]
	if last["stage"] != "poststop" || last["id"] != "c9" || last["component"] != "seccomp-hook" || last["msg"] != "container poststop" || last["time"] == nil {
		t.Errorf("poststop log line: %v", last)
	}
}

// failReader fails the test if anything reads it.
type failReader struct{ t *testing.T }

func (r failReader) Read([]byte) (int, error) {
	r.t.Error("stdin read")
	return 0, io.EOF
}

func TestUsage(t *testing.T) {
	e := setup(t)
	for _, args := range [][]string{
		{"--config", e.config, "poststep"},
		{},
		{"--config", e.config},
		{"precreate", "extra"},
		{"--no-such-flag", "precreate"},
	} {
		r := run(noEnv, failReader{t}, args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "seccomp-hook") || !strings.Contains(r.stderr, "USAGE:") || r.stdout != "" {
			t.Errorf("%q = %d, stderr %q", args, r.code, r.stderr)
		}
	}
	// --help is no error: the usage, every stage listed, on stdout.
	r := run(noEnv, failReader{t}, "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "createRuntime") || r.stderr != "" {
		t.Errorf("--help = %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// withProfile is spec with a profile an engine put there.
var withProfile = strings.Replace(spec, `"namespaces"`, `"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["reboot", "keyctl"], "action": "SCMP_ACT_ERRNO"}, {"names": ["add_key"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]},
		"namespaces"`, 1)

// listen starts a listener on the config's agent socket: enough for
// inject.Reach, which only connects. The returned func stops it.
func listen(t *testing.T, e env) func() {
	t.Helper()
	l, err := net.Listen("unix", e.cfg.Audit.Socket)
	if err != nil {
		t.Fatal(err)
	}
	return func() { l.Close() }
}

// TestCheckAfterPrecreate: the check stages accept what precreate made of a
// spec, in every existing mode and audit mode, whether the agent answered at
// precreate, at the check, both or neither.
func TestCheckAfterPrecreate(t *testing.T) {
	for _, mode := range []string{"keep", "replace", "tighten"} {
		for _, audit := range []string{"auto", "always"} {
			for _, up := range [][2]bool{{true, true}, {false, true}, {true, false}, {false, false}} {
				for in, data := range map[string]string{"no profile": spec, "engine profile": withProfile} {
					name := fmt.Sprintf("%s/audit %s/agent at precreate %v, at check %v/%s", mode, audit, up[0], up[1], in)
					e := setup(t)
					f, err := os.OpenFile(e.config, os.O_APPEND|os.O_WRONLY, 0)
					if err != nil {
						t.Fatal(err)
					}
					fmt.Fprintf(f, "mode = %q\n[[rule]]\nexisting = %q\n", audit, mode)
					f.Close()
					stop := func() {}
					if up[0] {
						stop = listen(t, e)
					}
					r := run(noEnv, strings.NewReader(data), "--config", e.config, "precreate")
					stop()
					os.Remove(e.cfg.Audit.Socket)
					if r.code != 0 {
						t.Errorf("%s: precreate = %d, %q", name, r.code, r.stderr)
						continue
					}
					if up[0] && !strings.Contains(r.stdout, "SCMP_ACT_NOTIFY") {
						t.Errorf("%s: precreate did not audit", name)
					}
					if up[1] {
						stop = listen(t, e)
					}
					state := bundle(t, []byte(r.stdout))
					if r := run(noEnv, strings.NewReader(state), "--config", e.config, "createRuntime"); r.code != 0 {
						t.Errorf("%s: createRuntime = %d, %q", name, r.code, r.stderr)
					}
					stop()
				}
			}
		}
	}
}

// TestOversizeInput: input past the cap is refused, not cut to a prefix that
// parses.
func TestOversizeInput(t *testing.T) {
	e := setup(t)
	state := `{"ociVersion":"1.0.2","id":"c9","status":"stopped","bundle":"/nonexistent"}`
	padded := state + strings.Repeat(" ", 64<<20-len(state))
	for _, stage := range []string{"poststop", "precreate"} {
		r := run(noEnv, strings.NewReader(padded+"garbage"), "--config", e.config, stage)
		if r.code != 1 || !strings.Contains(r.stderr, "stdin") || !strings.Contains(r.stderr, "larger than") {
			t.Errorf("%s with 64 MiB and garbage = %d, %q", stage, r.code, r.stderr)
		}
	}
	// Garbage after the JSON is refused within the cap too.
	if r := run(noEnv, strings.NewReader(state+" x"), "--config", e.config, "poststop"); r.code != 1 || !strings.Contains(r.stderr, "after top-level value") {
		t.Errorf("trailing garbage = %d, %q", r.code, r.stderr)
	}
	if r := run(noEnv, strings.NewReader(spec+"{}"), "--config", e.config, "precreate"); r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "after top-level value") {
		t.Errorf("precreate, trailing garbage = %d, %q", r.code, r.stderr)
	}
}

// TestErrorLog: the reason a stage failed reaches --error-log even when the
// config can't be read, and the command's default is DefaultErrorLog.
func TestErrorLog(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte("[[rule]]\nprofle = \"strict\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	errLog := filepath.Join(dir, "log", "hook.log") // the directory is made
	r := run(noEnv, strings.NewReader(spec), "--config", cfg, "--error-log", errLog, "precreate")
	if r.code != 1 || !strings.Contains(r.stderr, "unknown keys rule.profle") {
		t.Fatalf("precreate = %d, %q", r.code, r.stderr)
	}
	lines := logLines(t, errLog)
	if len(lines) != 1 || lines[0]["level"] != "error" || lines[0]["stage"] != "precreate" || !strings.Contains(lines[0]["msg"].(string), "unknown keys rule.profle") || !strings.Contains(lines[0]["msg"].(string), cfg) {
		t.Errorf("error log: %v", lines)
	}

	// The default comes from the Hook: the command's is DefaultErrorLog.
	var stdout, stderr bytes.Buffer
	other := filepath.Join(dir, "default.log")
	h := &hook.Hook{Args: []string{"seccomp-hook", "--config", cfg, "createRuntime"}, Getenv: noEnv, Stdin: strings.NewReader("{}"), Stdout: &stdout, Stderr: &stderr, ErrorLog: other}
	if code := h.Run(); code != 1 || len(logLines(t, other)) != 1 {
		t.Errorf("default error log: %d, %q", code, stderr.String())
	}
	if hook.DefaultErrorLog != "/var/log/seccomp-shim/hook.log" {
		t.Error("DefaultErrorLog moved: docs/podman.md names it")
	}
}
