package runcargs

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	id     = "3f9b0c7e51a24d68b1e0f2c4a6d8e0b2c4d6e8f0a1b3c5d7e9f1a3b5c7d9e1f3"
	docker = "/run/containerd/io.containerd.runtime.v2.task/moby/" + id
	k8s    = "/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + id
	podman = "/var/lib/containers/storage/overlay-containers/" + id + "/userdata"
	cwd    = "/home/user/work"

	dockerGlobal = "--root /var/run/docker/runtime-runc/moby --log " + docker + "/log.json --log-format json"
	k8sGlobal    = "--root /run/containerd/runc/k8s.io --log " + k8s + "/log.json --log-format json --systemd-cgroup"
)

type want struct {
	global         string // Global joined by spaces
	root, log, fmt string
	command        string
	bundle, id     string
	modifies       bool
}

var dockerWant = want{
	global: dockerGlobal,
	root:   "/var/run/docker/runtime-runc/moby", log: docker + "/log.json", fmt: "json",
}

func with(w want, command, id string) want {
	w.command, w.id = command, id
	return w
}

func withBundle(w want, command, bundle, id string) want {
	w.command, w.bundle, w.id, w.modifies = command, bundle, id, true
	return w
}

var parseTests = []struct {
	name string
	argv []string
	want want
}{
	// Docker 20.10, through containerd-shim-runc-v2 and go-runc.
	{"docker create", fields(dockerGlobal + " create --bundle " + docker + " --pid-file " + docker + "/init.pid " + id),
		withBundle(dockerWant, "create", docker, id)},
	{"docker create tty", fields(dockerGlobal + " create --bundle " + docker + " --pid-file " + docker + "/init.pid --console-socket /tmp/pty2938475/pty.sock " + id),
		withBundle(dockerWant, "create", docker, id)},
	{"docker start", fields(dockerGlobal + " start " + id), with(dockerWant, "start", id)},
	{"docker state", fields(dockerGlobal + " state " + id), with(dockerWant, "state", id)},
	{"docker kill", fields(dockerGlobal + " kill " + id + " 15"), with(dockerWant, "kill", id)},
	{"docker kill all", fields(dockerGlobal + " kill --all " + id + " 9"), with(dockerWant, "kill", id)},
	{"docker delete", fields(dockerGlobal + " delete " + id), with(dockerWant, "delete", id)},
	{"docker delete force", fields(dockerGlobal + " delete --force " + id), with(dockerWant, "delete", id)},
	{"docker pause", fields(dockerGlobal + " pause " + id), with(dockerWant, "pause", id)},
	{"docker resume", fields(dockerGlobal + " resume " + id), with(dockerWant, "resume", id)},
	{"docker ps", fields(dockerGlobal + " ps --format json " + id), with(dockerWant, "ps", id)},
	{"docker update", fields(dockerGlobal + " update --resources - " + id), with(dockerWant, "update", id)},
	{"docker events", fields(dockerGlobal + " events --stats " + id), with(dockerWant, "events", id)},
	{"docker version", fields("--version"), want{global: "--version"}},
	{"features", fields("features"), want{command: "features"}},

	// containerd 1.6 under Kubernetes, systemd cgroup driver.
	{"containerd create", fields(k8sGlobal + " create --bundle " + k8s + " --pid-file " + k8s + "/init.pid --console-socket /tmp/pty123/pty.sock " + id),
		want{global: k8sGlobal, root: "/run/containerd/runc/k8s.io", log: k8s + "/log.json", fmt: "json",
			command: "create", bundle: k8s, id: id, modifies: true}},
	{"containerd exec", fields(k8sGlobal + " exec --process /tmp/runc-process123 --detach --pid-file " + k8s + "/9a8b7c.pid " + id),
		want{global: k8sGlobal, root: "/run/containerd/runc/k8s.io", log: k8s + "/log.json", fmt: "json",
			command: "exec", id: id}},
	// go-runc's Restore, including its single-dash -no-subreaper.
	{"containerd restore", fields("restore --image-path /var/lib/cp/img --work-path /var/lib/cp/work --detach --pid-file " + k8s + "/init.pid --no-pivot -no-subreaper --bundle " + k8s + " " + id),
		want{command: "restore", bundle: k8s, id: id, modifies: true}},

	// podman 4.3 through conmon.
	{"podman create", fields("create --bundle " + podman + " --pid-file " + podman + "/pidfile " + id),
		want{command: "create", bundle: podman, id: id, modifies: true}},
	{"podman systemd", fields("--systemd-cgroup create --bundle " + podman + " --pid-file " + podman + "/pidfile " + id),
		want{global: "--systemd-cgroup", command: "create", bundle: podman, id: id, modifies: true}},

	// Flag spellings.
	{"short equals", fields("create -b=/srv/b c1"), want{command: "create", bundle: "/srv/b", id: "c1", modifies: true}},
	{"single dash long", fields("create -bundle /srv/b c1"), want{command: "create", bundle: "/srv/b", id: "c1", modifies: true}},
	{"double dash short", fields("create --b /srv/b c1"), want{command: "create", bundle: "/srv/b", id: "c1", modifies: true}},
	{"relative bundle", fields("create --bundle=relative c1"), want{command: "create", bundle: cwd + "/relative", id: "c1", modifies: true}},
	{"relative bundle dot", fields("create --bundle ./b/ c1"), want{command: "create", bundle: cwd + "/b", id: "c1", modifies: true}},
	// Cleaning would skip the symlink the kernel follows before "..".
	{"relative bundle dotdot", fields("create --bundle ../b c1"), want{command: "create", bundle: cwd + "/../b", id: "c1", modifies: true}},
	{"no bundle", fields("create c1"), want{command: "create", bundle: cwd, id: "c1", modifies: true}},
	{"bundle twice", fields("create --bundle /a --bundle /b c1"), want{command: "create", bundle: "/b", id: "c1", modifies: true}},
	{"global equals", fields("--root=/r --log-format=text -log /l create c1"),
		want{global: "--root=/r --log-format=text -log /l", root: "/r", log: "/l", fmt: "text", command: "create", bundle: cwd, id: "c1", modifies: true}},
	{"debug false", fields("--debug=false create c1"), want{global: "--debug=false", command: "create", bundle: cwd, id: "c1", modifies: true}},
	// --rootless is a string flag, so it takes the next token.
	{"rootless", fields("--rootless auto create c1"), want{global: "--rootless auto", command: "create", bundle: cwd, id: "c1", modifies: true}},
	{"rootless eats command", fields("--rootless create run c1"), want{global: "--rootless create", command: "run", bundle: cwd, id: "c1", modifies: true}},
	// Boolean flags never take a separate value.
	{"bool then value", fields("--systemd-cgroup true create c1"), want{global: "--systemd-cgroup", command: "true", id: "create"}},

	// Terminators.
	{"global terminator", fields("--root /r -- create --bundle /b c1"),
		want{global: "--root /r --", root: "/r", command: "create", bundle: "/b", id: "c1", modifies: true}},
	{"command terminator", fields("create --bundle /b -- c1"), want{command: "create", bundle: "/b", id: "c1", modifies: true}},
	{"command terminator hides flags", fields("create -- --bundle /b"), want{command: "create", bundle: cwd, id: "--bundle", modifies: true}},

	// urfave/cli moves flags in front of the positionals.
	{"flags after id", fields("create c1 --bundle /b"), want{command: "create", bundle: "/b", id: "c1", modifies: true}},
	{"trailing flag takes a positional", fields("create b c1 --bundle"), want{command: "create", bundle: cwd + "/b", id: "c1", modifies: true}},
	{"trailing flag takes the id", fields("create c1 -b"), want{command: "create", bundle: cwd + "/c1", modifies: true}},
	{"exec does not reorder", fields("exec c1 sh -c --pid-file"), want{command: "exec", id: "c1"}},
	{"ps does not reorder", fields("ps c1 -ef --format"), want{command: "ps", id: "c1"}},

	{"run detach", fields("run -d --bundle x c1"), want{command: "run", bundle: cwd + "/x", id: "c1", modifies: true}},
	{"run keep", fields("run --keep --no-subreaper --bundle /x --preserve-fds 2 c1"), want{command: "run", bundle: "/x", id: "c1", modifies: true}},
	{"restore", fields("restore --image-path i --bundle b c1"), want{command: "restore", bundle: cwd + "/b", id: "c1", modifies: true}},
	{"spec has a bundle but does not load it", fields("spec --rootless --bundle /x"), want{command: "spec"}},
	{"list", fields("--root /r list --format json"), want{global: "--root /r", root: "/r", command: "list"}},

	// Other runtimes' global flags.
	{"crun cgroup manager", fields("--cgroup-manager systemd create --bundle /b c1"),
		want{global: "--cgroup-manager systemd", command: "create", bundle: "/b", id: "c1", modifies: true}},
	{"crun cgroup manager equals", fields("--cgroup-manager=cgroupfs --log-level=debug create --bundle /b c1"),
		want{global: "--cgroup-manager=cgroupfs --log-level=debug", command: "create", bundle: "/b", id: "c1", modifies: true}},
	{"unknown flag with value", fields("--weird val create --bundle /b c1"),
		want{global: "--weird val", command: "create", bundle: "/b", id: "c1", modifies: true}},
	{"unknown flag before command", fields("--weird create --bundle /b c1"),
		want{global: "--weird", command: "create", bundle: "/b", id: "c1", modifies: true}},
	{"crun config", fields("create -f config.json --bundle /b c1"), want{command: "create", bundle: "/b", id: "c1", modifies: true}},

	// runc prints and exits without loading the bundle.
	{"help", fields("--help"), want{global: "--help"}},
	{"short help", fields("-h"), want{global: "-h"}},
	{"short version", fields("-v"), want{global: "-v"}},
	{"version before create", fields("--version create --bundle /b c1"), want{global: "--version", command: "create", id: "c1"}},
	{"create help", fields("create --help"), want{command: "create"}},
	{"create help false", fields("create -h=false c1"), want{command: "create", bundle: cwd, id: "c1", modifies: true}},
	{"version ignores command flags", fields("--version create --bundle"), want{global: "--version", command: "create"}},
	{"help ignores empty bundle", fields("create --bundle= -h"), want{command: "create"}},

	{"empty", nil, want{}},
	{"empty tokens", []string{"", ""}, want{command: ""}},
	{"empty id", []string{"create", "--bundle", "/b", ""}, want{command: "create", bundle: "/b", modifies: true}},
	{"dash command", fields("- create"), want{command: "-", id: "create"}},
	{"unknown command", fields("frobnicate --x y z"), want{command: "frobnicate", id: "z"}},
}

func fields(s string) []string { return strings.Fields(s) }

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Parse(tt.argv, cwd)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.argv, err)
			}
			got := want{
				global: strings.Join(a.Global, " "),
				root:   a.Root, log: a.Log, fmt: a.LogFormat,
				command: a.Command, bundle: a.Bundle, id: a.ID,
				modifies: a.ModifiesBundle(),
			}
			if got != tt.want {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.argv, got, tt.want)
			}
			checkSplit(t, tt.argv, a)
		})
	}
}

// checkSplit checks that Global, Command and CommandArgs are argv as given,
// since the wrapper execs runc with the original argv.
func checkSplit(t *testing.T, argv []string, a *Args) {
	t.Helper()
	joined := slices.Clone(a.Global)
	if len(a.Global) < len(argv) {
		joined = append(append(joined, a.Command), a.CommandArgs...)
	} else if a.Command != "" || len(a.CommandArgs) > 0 {
		t.Errorf("Parse(%q): command %q %q after all of argv", argv, a.Command, a.CommandArgs)
	}
	if !slices.Equal(joined, argv) {
		t.Errorf("Parse(%q): Global+Command+CommandArgs = %q", argv, joined)
	}
}

func TestParseErrors(t *testing.T) {
	for _, argv := range [][]string{
		fields("create --bundle"),
		fields("--root"),
		fields("--root /r --log"),
		fields("exec --pid-file"),
		fields("create --bundle= c1"),
		{"create", "-b", "", "c1"},
		fields("run --bundle /a --bundle= c1"),
		// crun reads the file --config names, not the bundle's config.json.
		fields("create --config other.json --bundle /b c1"),
		fields("run -f /tmp/x.json c1"),
	} {
		_, err := Parse(argv, cwd)
		if !errors.Is(err, ErrUsage) {
			t.Errorf("Parse(%q) = %v, want ErrUsage", argv, err)
		}
	}
}

func TestParseRelativeCwd(t *testing.T) {
	_, err := Parse(fields("create --bundle b c1"), "relative")
	if err == nil || errors.Is(err, ErrUsage) {
		t.Errorf("relative cwd: got %v, want a non-usage error", err)
	}
	// A command that does not load a bundle does not need cwd.
	if _, err := Parse(fields("state c1"), ""); err != nil {
		t.Errorf("state without cwd: %v", err)
	}
	if a, err := Parse(fields("create --bundle /b c1"), ""); err != nil || a.Bundle != "/b" {
		t.Errorf("absolute bundle without cwd: %+v, %v", a, err)
	}
}

func TestParseDoesNotAlias(t *testing.T) {
	argv := fields("--root /r create --bundle /b c1")
	a, err := Parse(argv, cwd)
	if err != nil {
		t.Fatal(err)
	}
	argv[1], argv[4] = "/changed", "/changed"
	if a.Global[1] != "/r" || a.CommandArgs[1] != "/b" {
		t.Errorf("Args shares argv's backing array: %q %q", a.Global, a.CommandArgs)
	}
}

func FuzzParse(f *testing.F) {
	for _, tt := range parseTests {
		f.Add(strings.Join(tt.argv, "\x00"))
	}
	f.Fuzz(func(t *testing.T, s string) {
		var argv []string
		if s != "" {
			argv = strings.Split(s, "\x00")
		}
		a, err := Parse(argv, cwd)
		if err != nil {
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("Parse(%q): non-usage error %v with an absolute cwd", argv, err)
			}
			return
		}
		if a.ModifiesBundle() && !filepath.IsAbs(a.Bundle) {
			t.Fatalf("Parse(%q): bundle %q is not absolute", argv, a.Bundle)
		}
		if !a.ModifiesBundle() && a.Bundle != "" {
			t.Fatalf("Parse(%q): bundle %q for %q", argv, a.Bundle, a.Command)
		}
		checkSplit(t, argv, a)
	})
}

// Every spelling of the bundle flag that runc 1.1 (urfave/cli v1.22 on Go's
// flag package) accepts: one or two dashes, long or short, value separate
// or after "=", before or after the container id.
func TestBundleSpellings(t *testing.T) {
	for _, cmd := range []string{"create", "run", "restore"} {
		for _, spelling := range []string{
			"-b /srv/b c1", "-b=/srv/b c1", "--b /srv/b c1", "--b=/srv/b c1",
			"--bundle /srv/b c1", "--bundle=/srv/b c1", "-bundle /srv/b c1", "-bundle=/srv/b c1",
			"c1 --bundle=/srv/b", "c1 -b /srv/b",
		} {
			a, err := Parse(append([]string{"--root=/r", cmd}, strings.Fields(spelling)...), "/cwd")
			if err != nil || a.Bundle != "/srv/b" || a.ID != "c1" || a.Root != "/r" {
				t.Errorf("%s %s: %+v, %v", cmd, spelling, a, err)
			}
		}
	}
}

// TestConfigJSONAccepted: crun's --config naming config.json itself reads
// the file the policy was applied to.
func TestConfigJSONAccepted(t *testing.T) {
	a, err := Parse(fields("create --config config.json --bundle /b c1"), cwd)
	if err != nil || a.Bundle != "/b" {
		t.Errorf("Parse = %+v, %v", a, err)
	}
}
