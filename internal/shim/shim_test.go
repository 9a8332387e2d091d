package shim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/internal/check"
	"github.com/seccomp-shim/seccomp-shim/internal/shim"
)

// As in os/exec's tests, this binary is also the program under test. With
// modeEnv set it is seccomp-shim, exactly as cmd/shim builds it; under the
// name "runc" it is a fake runtime. The shim passes its environment on
// through the exec, so the fake can't be told apart by an env var: it is
// told apart by its executable's name.
const (
	modeEnv   = "SECCOMP_SHIM_TEST_MODE"
	recordEnv = "FAKE_RUNC_RECORD" // where the fake writes what it saw
	exitEnv   = "FAKE_RUNC_EXIT"   // the fake's exit code
	bundleEnv = "FAKE_RUNC_BUNDLE" // whose config.json the fake snapshots

	fakeStdout = "fake-runc stdout\n"
)

func TestMain(m *testing.M) {
	if os.Getenv(modeEnv) != "" {
		if exe, _ := os.Executable(); filepath.Base(exe) == "runc" {
			os.Exit(fakeRunc())
		}
		dir, _ := os.Getwd()
		s := &shim.Shim{
			Args: os.Args, Env: os.Environ(), Dir: dir,
			Stdout: os.Stdout, Stderr: os.Stderr,
			Exec: syscall.Exec, Self: "/proc/self/exe", Check: check.Run,
		}
		os.Exit(s.Run())
	}
	code := m.Run()
	if fakeDir != "" {
		os.RemoveAll(fakeDir)
	}
	os.Exit(code)
}

// record is what the fake runtime saw.
type record struct {
	Args      []string
	Env       []string
	Cwd       string
	Pid       int
	Config    []byte
	HasConfig bool
}

func fakeRunc() int {
	r := record{Args: os.Args, Env: os.Environ(), Pid: os.Getpid()}
	r.Cwd, _ = os.Getwd()
	if b := os.Getenv(bundleEnv); b != "" {
		data, err := os.ReadFile(filepath.Join(b, "config.json"))
		r.Config, r.HasConfig = data, err == nil
	}
	data, _ := json.Marshal(r)
	if err := os.WriteFile(os.Getenv(recordEnv), data, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "fake runc:", err)
		return 125
	}
	fmt.Print(fakeStdout)
	code, _ := strconv.Atoi(os.Getenv(exitEnv))
	return code
}

var fakeDir string

// fakeRunc returns a copy of this binary named runc: a link would be the
// same file as the shim, which the shim refuses to exec.
func fakeRuncPath(t *testing.T) string {
	t.Helper()
	if fakeDir == "" {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		dir, err := os.MkdirTemp("", "seccomp-shim-test-")
		if err != nil {
			t.Fatal(err)
		}
		if err := copyFile(self, filepath.Join(dir, "runc")); err != nil {
			os.RemoveAll(dir)
			t.Fatal(err)
		}
		fakeDir = dir
	}
	return filepath.Join(fakeDir, "runc")
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// configJSON is laid out as `runc spec` writes it, with fields runtime-spec
// doesn't know at the top level and nested, and numbers and escapes a
// decode/encode round trip would rewrite.
const configJSON = `{
	"ociVersion": "1.0.2-dev",
	"process": {
		"terminal": false,
		"user": {
			"uid": 0,
			"gid": 0
		},
		"args": [
			"sh",
			"-c",
			"echo \u00e9 \/ <&>"
		],
		"cwd": "/",
		"capabilities": {
			"bounding": [
				"CAP_KILL"
			]
		},
		"xProcessFuture": {
			"big": 1e400,
			"precise": 1.50
		}
	},
	"root": {
		"path": "rootfs",
		"readonly": true
	},
	"hostname": "runc",
	"xFuture": [
		-0,
		{},
		[]
	],
	"linux": {
		"namespaces": [
			{
				"type": "pid"
			}
		],
		"xLinuxFuture": {
			"k": "v"
		},
		"maskedPaths": [
			"/proc/kcore"
		]
	}
}
`

const (
	id         = "3f9b0c7e51a24d68"
	configMode = 0o640 // not the umask's default, so a rewrite must keep it
)

var oldTime = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

// env is one test's node: a bundle, a config, a profiles directory.
type env struct {
	dir, bundle, config, profiles, record, runc string
	extraEnv                                    []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{
		dir:      dir,
		bundle:   filepath.Join(dir, "bundle"),
		config:   filepath.Join(dir, "config.toml"),
		profiles: filepath.Join(dir, "profiles"),
		record:   filepath.Join(dir, "record.json"),
		runc:     fakeRuncPath(t),
	}
	for _, d := range []string{e.bundle, e.profiles} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.writeConfig(t, "")
	e.writeBundle(t, configJSON)
	return e
}

// writeConfig writes the shim's config: the fake runtime, the test's own
// profiles directory, an agent socket where nothing listens (never the
// node's), and rules.
func (e *env) writeConfig(t *testing.T, rules string) {
	t.Helper()
	noAgent := filepath.Join(filepath.Dir(e.config), "agent.sock")
	data := fmt.Sprintf("[runtime]\npath = [%q]\n[profiles]\ndir = %q\n[audit]\nsocket = %q\n%s", e.runc, e.profiles, noAgent, rules)
	e.write(t, e.config, data, 0o644)
}

func (e *env) writeBundle(t *testing.T, data string) {
	t.Helper()
	e.write(t, filepath.Join(e.bundle, "config.json"), data, configMode)
}

func (e *env) write(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, oldTime, oldTime); err != nil {
		t.Fatal(err)
	}
}

// expand replaces B, R and ID in a command line template.
func (e *env) expand(argv string) []string {
	f := strings.Fields(argv)
	for i, s := range f {
		s = strings.ReplaceAll(s, "B/", e.bundle+"/")
		switch s {
		case "B":
			s = e.bundle
		case "R":
			s = filepath.Join(e.dir, "root")
		case "ID":
			s = id
		}
		f[i] = s
	}
	return f
}

type result struct {
	code           int
	pid            int
	stdout, stderr string
	rec            *record // nil if the fake never ran
}

// run runs the shim with args in cwd; the fake exits with code.
func (e *env) run(t *testing.T, cwd string, code int, args ...string) result {
	t.Helper()
	os.Remove(e.record)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The deadline is what stops an exec loop, should the shim ever run
	// itself as the runtime.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Dir = cwd
	cmd.Env = append([]string{
		modeEnv + "=1",
		"PATH=" + fakeDir,
		"SECCOMP_SHIM_CONFIG=" + e.config,
		recordEnv + "=" + e.record,
		exitEnv + "=" + strconv.Itoa(code),
		bundleEnv + "=" + e.bundle,
		"MARKER=passed-through",
	}, e.extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%q did not finish: an exec loop?", args)
	}
	r := result{stdout: stdout.String(), stderr: stderr.String(), pid: cmd.Process.Pid}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(e.record); err == nil {
		r.rec = &record{}
		if err := json.Unmarshal(data, r.rec); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// ran fails unless the fake runtime ran in place of the shim, with exactly
// the shim's argv, and its exit code and stdout came through untouched.
func (r result) ran(t *testing.T, e *env, cwd string, code int, args []string) {
	t.Helper()
	if r.rec == nil {
		t.Fatalf("%q: runtime not run; code %d, stderr %q", args, r.code, r.stderr)
	}
	if want := append([]string{e.runc}, args...); !slices.Equal(r.rec.Args, want) {
		t.Errorf("runtime argv:\n got %q\nwant %q", r.rec.Args, want)
	}
	if r.code != code || r.stdout != fakeStdout {
		t.Errorf("%q: exit %d, want %d; stdout %q", args, r.code, code, r.stdout)
	}
	// Same pid: an exec, so the engine's fds, signals and wait status reach
	// the runtime.
	if r.rec.Pid != r.pid || r.rec.Cwd != cwd || !slices.Contains(r.rec.Env, "MARKER=passed-through") {
		t.Errorf("pid %d (shim %d), cwd %q (want %q), env %q", r.rec.Pid, r.pid, r.rec.Cwd, cwd, r.rec.Env)
	}
}

// members returns an object's keys in order and their raw values.
func members(t *testing.T, data []byte) ([]string, map[string]json.RawMessage) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %v %v", tok, err)
	}
	var keys []string
	vals := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		vals[tok.(string)] = v
	}
	return keys, vals
}

// sameExcept fails unless a and b have the same keys in the same order and
// the same bytes but at skip; it returns the values at skip.
func sameExcept(t *testing.T, a, b []byte, skip string) (json.RawMessage, json.RawMessage) {
	t.Helper()
	ka, va := members(t, a)
	kb, vb := members(t, b)
	del := func(k string) bool { return k == skip }
	if !slices.Equal(slices.DeleteFunc(ka, del), slices.DeleteFunc(kb, del)) {
		t.Errorf("keys changed:\n%q\n%q", ka, kb)
	}
	for k, v := range va {
		if k != skip && !bytes.Equal(v, vb[k]) {
			t.Errorf("%q changed:\n%s\n%s", k, v, vb[k])
		}
	}
	return va[skip], vb[skip]
}

// checkInjected fails unless got is configJSON with Docker's default
// profile added and nothing else changed.
func checkInjected(t *testing.T, got []byte) {
	t.Helper()
	linuxIn, linuxOut := sameExcept(t, []byte(configJSON), got, "linux")
	_, sc := sameExcept(t, linuxIn, linuxOut, "seccomp")
	var p struct {
		DefaultAction string
		Syscalls      []json.RawMessage
	}
	if err := json.Unmarshal(sc, &p); err != nil || p.DefaultAction != "SCMP_ACT_ERRNO" || len(p.Syscalls) == 0 {
		t.Errorf("linux.seccomp is not Docker's default (%v): %.200s", err, sc)
	}
}

// unchanged fails unless path still holds want, untouched.
func unchanged(t *testing.T, path, want string) {
	t.Helper()
	data, err := os.ReadFile(path)
	fi, _ := os.Stat(path)
	if err != nil || string(data) != want || !fi.ModTime().Equal(oldTime) {
		t.Errorf("%s changed (%v)", path, err)
	}
}

// Command lines as engines send them (DESIGN-NOTES §4).
var creates = []struct {
	name, argv string
	cwd        string // "B" for the bundle, else a directory of its own
	code       int
}{
	{"docker", "--root R --log B/log.json --log-format json create --bundle B --pid-file B/init.pid ID", "B", 0},
	{"containerd", "--root R --log B/log.json --log-format json --systemd-cgroup create --bundle B --pid-file B/init.pid --console-socket B/pty.sock ID", "", 3},
	{"podman", "create --bundle B --pid-file B/pidfile ID", "", 0},
	{"run", "--root R run -d --pid-file B/init.pid ID", "B", 0},
	{"restore", "--root R --log B/log.json --log-format json restore --image-path B/checkpoint --bundle B --detach ID", "", 42},
}

func TestCreate(t *testing.T) {
	for _, tc := range creates {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cwd := e.bundle
			if tc.cwd == "" {
				cwd = t.TempDir()
			}
			args := e.expand(tc.argv)
			r := e.run(t, cwd, tc.code, args...)
			r.ran(t, e, cwd, tc.code, args)
			if r.stderr != "" {
				t.Errorf("stderr %q", r.stderr)
			}
			if !r.rec.HasConfig {
				t.Fatal("runtime saw no config.json")
			}
			checkInjected(t, r.rec.Config)
			path := filepath.Join(e.bundle, "config.json")
			if got, _ := os.ReadFile(path); !bytes.Equal(got, r.rec.Config) {
				t.Error("config.json changed after the runtime read it")
			}
			fi, _ := os.Stat(path)
			if fi.Mode() != configMode {
				t.Errorf("mode %v, want %v", fi.Mode(), os.FileMode(configMode))
			}
			if _, err := os.Stat(filepath.Join(e.bundle, "log.json")); err == nil {
				t.Error("success wrote to the engine's log")
			}
			entries, _ := os.ReadDir(e.bundle)
			if len(entries) != 1 {
				t.Errorf("bundle holds %v", entries)
			}

			// A second create (a retried start) changes nothing.
			if err := os.Chtimes(path, oldTime, oldTime); err != nil {
				t.Fatal(err)
			}
			r = e.run(t, cwd, 0, args...)
			r.ran(t, e, cwd, 0, args)
			unchanged(t, path, string(r.rec.Config))
		})
	}
}

func TestPassThrough(t *testing.T) {
	const globals = "--root R --log B/log.json --log-format json "
	for _, argv := range []string{
		globals + "start ID",
		globals + "state ID",
		globals + "kill ID 9",
		globals + "kill --all ID SIGKILL",
		globals + "delete --force ID",
		globals + "exec --process B/process.json --detach --pid-file B/exec.pid ID",
		"delete --force ID",
		"features",
		// Flags runc prints and exits on, before it reads the bundle.
		"create --help",
		"--version create --bundle B ID",
	} {
		t.Run(argv, func(t *testing.T) {
			e := newEnv(t)
			args := e.expand(argv)
			// From inside the bundle, which is the bundle of a command
			// without --bundle: only create, run and restore may touch it.
			r := e.run(t, e.bundle, 5, args...)
			r.ran(t, e, e.bundle, 5, args)
			if r.stderr != "" {
				t.Errorf("stderr %q, want none", r.stderr)
			}
			unchanged(t, filepath.Join(e.bundle, "config.json"), configJSON)
			if string(r.rec.Config) != configJSON {
				t.Error("runtime saw a changed config.json")
			}
		})
	}
}

// jsonLine checks that data is exactly one runc-style JSON error line and
// returns its msg.
func jsonLine(t *testing.T, data []byte) string {
	t.Helper()
	if !bytes.HasSuffix(data, []byte("\n")) || bytes.Count(data, []byte("\n")) != 1 {
		t.Fatalf("not one line: %q", data)
	}
	var m map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%q: %v", data, err)
	}
	if _, err := time.Parse(time.RFC3339Nano, m["time"]); err != nil || len(m) != 3 || m["level"] != "error" {
		t.Errorf("log line %q (time: %v)", data, err)
	}
	return m["msg"]
}

// logrusText is logrus's TextFormatter without colours, as runc writes with
// --log-format text.
var logrusText = regexp.MustCompile(`^time="([^"]+)" level=error msg=("(?:[^"\\]|\\.)*")\n$`)

func textLine(t *testing.T, data []byte) string {
	t.Helper()
	m := logrusText.FindSubmatch(data)
	if m == nil {
		t.Fatalf("not a logrus text line: %q", data)
	}
	if _, err := time.Parse(time.RFC3339Nano, string(m[1])); err != nil {
		t.Error(err)
	}
	msg, err := strconv.Unquote(string(m[2]))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

const docker = "--root R --log B/log.json --log-format json create --bundle B --pid-file B/init.pid ID"

func TestErrorsBeforeExec(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, e *env)
		want  []string // in the message, with B, C and P for bundle, config and profiles
	}{
		{"truncated config.json", func(t *testing.T, e *env) { e.writeBundle(t, configJSON[:len(configJSON)/2]) },
			[]string{"B/config.json", "unexpected EOF"}},
		{"missing config.json", func(t *testing.T, e *env) { os.Remove(filepath.Join(e.bundle, "config.json")) },
			[]string{"B/config.json", "no such file or directory"}},
		{"missing config file", func(t *testing.T, e *env) { os.Remove(e.config) },
			[]string{"config C", "no such file or directory"}},
		{"invalid TOML", func(t *testing.T, e *env) { e.write(t, e.config, "[runtime\npath = 1\n", 0o644) },
			[]string{"config C", "invalid config", "toml"}},
		{"unknown key", func(t *testing.T, e *env) { e.writeConfig(t, "[[rule]]\nprofiel = \"strict\"\n") },
			[]string{"config C", "unknown keys", "profiel"}},
		{"unknown profile", func(t *testing.T, e *env) { e.writeConfig(t, "[[rule]]\nprofile = \"nope\"\n") },
			[]string{"B/config.json", `profile "nope"`, "P/nope.json", "unknown profile"}},
		{"unknown syscall", func(t *testing.T, e *env) {
			e.write(t, filepath.Join(e.profiles, "bad.json"), `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"}]}`, 0o644)
			e.writeConfig(t, "[[rule]]\nprofile = \"bad\"\n")
		}, []string{"P/bad.json", `unknown syscall "no_such_syscall"`}},
		{"path annotation", func(t *testing.T, e *env) {
			// Were the name used as a path, this would be a valid profile.
			e.profiles = filepath.Join(e.dir, "p", "a", "b")
			if err := os.MkdirAll(filepath.Join(e.dir, "p", "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			e.write(t, filepath.Join(e.profiles, "../../etc/passwd.json"), `{"defaultAction": "SCMP_ACT_ALLOW"}`, 0o644)
			e.writeConfig(t, "")
			e.writeBundle(t, strings.Replace(configJSON, `"hostname"`, `"annotations": {"seccomp-shim.io/profile": "../../etc/passwd"},
	"hostname"`, 1))
		}, []string{"seccomp-shim.io/profile", "../../etc/passwd", "not a profile name"}},
		{"runtime is the shim", func(t *testing.T, e *env) {
			self, _ := os.Executable()
			e.write(t, e.config, fmt.Sprintf("[runtime]\npath = [%q]\n", self), 0o644)
		}, []string{"runtime.path", "config C", "no runtime found"}},
		{"runc in PATH is the shim", func(t *testing.T, e *env) {
			// The shim installed as runc, found through PATH.
			self, _ := os.Executable()
			dir := filepath.Join(e.dir, "bin")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(self, filepath.Join(dir, "runc")); err != nil {
				t.Fatal(err)
			}
			e.extraEnv = append(e.extraEnv, "PATH="+dir)
			e.write(t, e.config, "[runtime]\npath = \"runc\"\n", 0o644)
		}, []string{"runtime.path", `["runc"]`}},
	} {
		for _, format := range []string{"json", "text", ""} {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				e := newEnv(t)
				tc.setup(t, e)
				path := filepath.Join(e.bundle, "config.json")
				before, beforeErr := os.ReadFile(path)
				argv := docker
				switch format {
				case "text":
					argv = strings.Replace(argv, "--log-format json", "--log-format text", 1)
				case "":
					argv = strings.Replace(argv, " --log-format json", "", 1)
				}
				r := e.run(t, e.bundle, 0, e.expand(argv)...)
				if r.code != 1 || r.rec != nil || r.stdout != "" {
					t.Errorf("exit %d, runtime ran: %v, stdout %q", r.code, r.rec != nil, r.stdout)
				}
				for _, w := range tc.want {
					w = strings.NewReplacer("B/", e.bundle+"/", "config C", "config "+e.config, "P/", e.profiles+"/").Replace(w)
					if !strings.Contains(r.stderr, w) {
						t.Errorf("stderr lacks %q: %s", w, r.stderr)
					}
				}
				after, afterErr := os.ReadFile(path)
				if !bytes.Equal(before, after) || (beforeErr == nil) != (afterErr == nil) {
					t.Error("config.json changed")
				}
				if beforeErr == nil {
					unchanged(t, path, string(before))
				}

				data, err := os.ReadFile(filepath.Join(e.bundle, "log.json"))
				if err != nil {
					t.Fatal(err)
				}
				var msg string
				if format == "json" {
					msg = jsonLine(t, data)
				} else {
					msg = textLine(t, data)
				}
				if !regexp.MustCompile(`^seccomp-shim (create|run|restore) failed: `).MatchString(msg) || r.stderr != msg+"\n" {
					t.Errorf("log msg %q, stderr %q", msg, r.stderr)
				}
				if strings.Count(msg, "seccomp-shim") > strings.Count(strings.SplitN(msg, ": ", 2)[1], "seccomp-shim")+1 {
					t.Errorf("prefix doubled: %q", msg)
				}
			})
		}
	}
}

// A broken config stops new containers only: the ones already running must
// stay manageable, with the default runtimes from PATH.
func TestBrokenConfigPassesThrough(t *testing.T) {
	for _, argv := range []string{
		docker[:strings.Index(docker, "create")] + "delete --force ID",
		docker[:strings.Index(docker, "create")] + "kill ID 15",
		docker[:strings.Index(docker, "create")] + "state ID",
		"delete --force ID",
	} {
		for name, broken := range map[string]func(*testing.T, *env){
			"invalid": func(t *testing.T, e *env) { e.write(t, e.config, "[runtime\n", 0o644) },
			"missing": func(t *testing.T, e *env) { os.Remove(e.config) },
			// A FIFO blocked every command; deep nesting crashed them.
			"fifo": func(t *testing.T, e *env) {
				os.Remove(e.config)
				if err := syscall.Mkfifo(e.config, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			"deep": func(t *testing.T, e *env) { e.write(t, e.config, "x = "+strings.Repeat("[", 900000), 0o644) },
			"huge": func(t *testing.T, e *env) {
				e.write(t, e.config, strings.Repeat("# x\n", 2<<20), 0o644)
			},
		} {
			t.Run(name+"/"+argv, func(t *testing.T) {
				e := newEnv(t)
				broken(t, e)
				args := e.expand(argv)
				r := e.run(t, e.bundle, 9, args...)
				r.ran(t, e, e.bundle, 9, args)
				if !strings.HasPrefix(r.stderr, "seccomp-shim: warning: config "+e.config) || strings.Count(r.stderr, "\n") != 1 {
					t.Errorf("stderr %q", r.stderr)
				}
				if _, err := os.Stat(filepath.Join(e.bundle, "log.json")); err == nil {
					t.Error("a warning went to the engine's log, which reads it as the runtime's error")
				}
			})
		}
	}
}

func TestUnparsableCreate(t *testing.T) {
	e := newEnv(t)
	// runc would refuse it too, but which config.json it means is unknown.
	r := e.run(t, e.bundle, 0, "create", "--bundle")
	if r.code != 1 || r.rec != nil || !strings.Contains(r.stderr, "--bundle needs a value") {
		t.Errorf("exit %d, ran %v, stderr %q", r.code, r.rec != nil, r.stderr)
	}
	unchanged(t, filepath.Join(e.bundle, "config.json"), configJSON)
}

// The node's log.file records each decision; the engine's --log stays for
// errors only.
func TestRecordsDecision(t *testing.T) {
	e := newEnv(t)
	logFile := filepath.Join(e.dir, "shim.log")
	e.writeConfig(t, fmt.Sprintf("[log]\nfile = %q\n", logFile))
	args := e.expand(docker)
	e.run(t, e.bundle, 0, args...).ran(t, e, e.bundle, 0, args)
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil || bytes.Count(data, []byte("\n")) != 1 {
		t.Fatalf("log %q: %v", data, err)
	}
	if m["level"] != "info" || m["action"] != "injected" || m["id"] != id || m["bundle"] != e.bundle || m["profile"] != "default" || m["command"] != "create" {
		t.Errorf("log line %v", m)
	}
	if _, err := os.Stat(filepath.Join(e.bundle, "log.json")); err == nil {
		t.Error("success wrote to the engine's log")
	}
}
