// Package check tells an operator whether a node is ready for seccomp-shim:
// kernel support, the runtime it will exec, each engine's registration, the
// agent, and that the config and every profile validate. It is
// `seccomp-shim check`.
package check

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/internal/kernelfeat"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"golang.org/x/sys/unix"
)

// Status of one finding.
const (
	OK   = "ok"
	Warn = "warn"
	Fail = "FAIL"
)

// Finding is one line of the report.
type Finding struct {
	Status, Topic, Detail string
}

// Host is where the checks look, so tests can point them at fixtures.
type Host struct {
	Root    string // "/" on a real node
	Release string // kernel release; uname if empty
	Path    string // PATH for runtime lookup
	// IA32 answers whether the kernel runs 32-bit x86 programs, as
	// kernelfeat.IA32 does; nil means 32-bit emulation is not reported.
	IA32 func() error
}

// Run checks the node and writes the report; the exit code is 1 if anything
// failed.
func Run(cfg *policy.Config, w io.Writer) int {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	runDir := policy.RunDir(os.Getenv) // a config that failed to load has none
	if cfg != nil {
		runDir = cfg.RunDir
	}
	h := Host{Root: "/", Release: unix.ByteSliceToString(uts.Release[:]), Path: os.Getenv("PATH"),
		// Cached: the shim's architectures = "auto" then finds this boot's answer.
		IA32: func() error { return kernelfeat.IA32Cached(runDir) }}
	code := 0
	for _, f := range h.All(cfg) {
		fmt.Fprintf(w, "%-4s %-10s %s\n", f.Status, f.Topic, f.Detail)
		if f.Status == Fail {
			code = 1
		}
	}
	return code
}

// All runs every check. A nil cfg is a config that failed to load: the
// checks that need none still run, the runtime looked up as the built-in
// defaults would.
func (h Host) All(cfg *policy.Config) []Finding {
	if cfg == nil {
		def := policy.DefaultConfig()
		return slices.Concat(h.Kernel(), h.Runtime(def), h.Engines(), Agent(nil))
	}
	return slices.Concat(h.Kernel(), h.Runtime(cfg), h.Engines(), Agent(cfg), Config(cfg))
}

// Kernel checks the build options and the actions the kernel offers.
func (h Host) Kernel() []Finding {
	var out []Finding
	opts, src, err := h.kernelConfig()
	switch {
	case err != nil:
		out = append(out, Finding{Warn, "kernel", "build config not found (/boot/config-" + h.Release + ", /proc/config.gz): can't confirm CONFIG_SECCOMP"})
	default:
		for _, o := range []string{"CONFIG_SECCOMP", "CONFIG_SECCOMP_FILTER"} {
			if opts[o] == "y" {
				out = append(out, Finding{OK, "kernel", o + "=y (" + src + ")"})
			} else {
				out = append(out, Finding{Fail, "kernel", o + " is not set (" + src + "): seccomp filters can't work"})
			}
		}
	}
	if h.IA32 != nil {
		out = append(out, ia32Finding(h.IA32()))
	}
	data, err := os.ReadFile(filepath.Join(h.Root, "proc/sys/kernel/seccomp/actions_avail"))
	if err != nil {
		return append(out, Finding{Fail, "kernel", "no /proc/sys/kernel/seccomp/actions_avail: seccomp filters unavailable"})
	}
	avail := strings.Fields(string(data))
	for _, a := range []string{"errno", "kill_process", "allow", "log"} {
		if !slices.Contains(avail, a) {
			out = append(out, Finding{Fail, "kernel", "seccomp action " + a + " missing from actions_avail"})
		}
	}
	if slices.Contains(avail, "user_notif") {
		out = append(out, Finding{OK, "kernel", "actions: " + strings.Join(avail, " ")})
	} else {
		out = append(out, Finding{Warn, "kernel", "no user_notif in actions_avail: no audit of denials through the agent"})
	}
	return out
}

// ia32Finding says whether 32-bit programs run here, and so whether a
// filter's x86 and x32 sections protect anything.
func ia32Finding(err error) Finding {
	switch {
	case err == nil:
		return Finding{OK, "kernel", "32-bit emulation on: 32-bit programs run, and filters need their x86/x32 sections (architectures = \"auto\" keeps them)"}
	case errors.Is(err, kernelfeat.ErrNotSupported):
		return Finding{OK, "kernel", "32-bit emulation off: no 32-bit program runs; architectures = \"auto\" compiles filters for the native architecture only"}
	}
	return Finding{Warn, "kernel", fmt.Sprintf("32-bit emulation unknown (%v): architectures = \"auto\" keeps the x86/x32 sections", err)}
}

func (h Host) kernelConfig() (map[string]string, string, error) {
	path := filepath.Join(h.Root, "boot", "config-"+h.Release)
	var r io.Reader
	f, err := os.Open(path)
	if err != nil {
		path = filepath.Join(h.Root, "proc/config.gz")
		if f, err = os.Open(path); err != nil {
			return nil, "", err
		}
		if r, err = gzip.NewReader(f); err != nil {
			f.Close()
			return nil, "", err
		}
	} else {
		r = f
	}
	defer f.Close()
	opts := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && !strings.HasPrefix(k, "#") {
			opts[k] = v
		}
	}
	return opts, path, sc.Err()
}

// Runtime finds the runtime the shim would exec and asks it for its version
// and features.
func (h Host) Runtime(cfg *policy.Config) []Finding {
	rt, err := cfg.FindRuntime(h.Path, nil)
	if err != nil {
		return []Finding{{Fail, "runtime", fmt.Sprintf("none of %q found (runtime.path in %s)", []string(cfg.Runtime.Path), cfg.Source)}}
	}
	out := []Finding{}
	ver, err := run(rt, "--version")
	if err != nil {
		return append(out, Finding{Fail, "runtime", rt + " --version: " + err.Error()})
	}
	out = append(out, Finding{OK, "runtime", rt + ": " + strings.ReplaceAll(strings.TrimSpace(ver), "\n", "; ")})
	feat, err := run(rt, "features")
	if err != nil {
		return append(out, Finding{Warn, "runtime", rt + " features: " + err.Error() + " (runc before 1.1 has no features command)"})
	}
	var f struct {
		Linux struct {
			Seccomp *struct {
				Enabled bool     `json:"enabled"`
				Actions []string `json:"actions"`
			} `json:"seccomp"`
		} `json:"linux"`
	}
	if err := json.Unmarshal([]byte(feat), &f); err != nil || f.Linux.Seccomp == nil {
		return append(out, Finding{Warn, "runtime", rt + " features: no seccomp section"})
	}
	if !f.Linux.Seccomp.Enabled {
		return append(out, Finding{Fail, "runtime", rt + " was built without seccomp"})
	}
	st := OK
	detail := rt + " seccomp actions: " + strings.Join(f.Linux.Seccomp.Actions, " ")
	if !slices.Contains(f.Linux.Seccomp.Actions, string(specs.ActNotify)) {
		st, detail = Warn, detail+" (no SCMP_ACT_NOTIFY: no audit through the agent)"
	}
	return append(out, Finding{st, "runtime", detail})
}

func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// capsAll is every capability: a profile must validate for privileged
// containers too, where Docker's profile includes the most rules.
var capsAll = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
	"CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// Config validates every profile the config can reach: the built-ins, each
// file in the profiles directory, and each name a rule uses.
func Config(cfg *policy.Config) []Finding {
	out := []Finding{{OK, "config", cfg.Source + fmt.Sprintf(": %d rules", len(cfg.Rules))}}
	names := policy.BuiltinNames()
	if cfg.Profiles.Dir != "" {
		files, err := filepath.Glob(filepath.Join(cfg.Profiles.Dir, "*.json"))
		if err != nil {
			out = append(out, Finding{Fail, "profiles", err.Error()})
		}
		for _, f := range files {
			names = append(names, strings.TrimSuffix(filepath.Base(f), ".json"))
		}
	}
	usedBy := map[string][]string{}
	for _, r := range append(cfg.Rules, policy.DefaultRule()) {
		for _, n := range append([]string{r.Profile}, r.AllowedProfiles...) {
			names = append(names, n)
			usedBy[n] = append(usedBy[n], fmt.Sprintf("%q", r.Name))
		}
	}
	slices.Sort(names)
	for _, n := range slices.Compact(names) {
		for _, f := range Profile(cfg, n) {
			if f.Status == Fail && len(usedBy[n]) > 0 {
				f.Detail += " (used by rule " + strings.Join(slices.Compact(usedBy[n]), ", rule ") + ")"
			}
			out = append(out, f)
		}
	}
	return out
}

// Profile loads, resolves (for a default and a fully privileged container)
// and validates one profile.
func Profile(cfg *policy.Config, name string) []Finding {
	p, err := policy.LoadProfile(cfg.Profiles.Dir, name)
	if err != nil {
		return []Finding{{Fail, "profile", err.Error()}}
	}
	if p.Unconfined() {
		return []Finding{{OK, "profile", fmt.Sprintf("%s (%s): no filter", name, p.Source)}}
	}
	// Both resolutions must validate, but their warnings (names this
	// libseccomp doesn't know) would be said twice, the privileged one's
	// list longer: report those of the privileged one, which has the most
	// rules.
	var warnings []string
	for _, caps := range [][]string{nil, capsAll} {
		spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
		sc, err := p.Resolve(spec)
		if err == nil {
			warnings, err = policy.ValidateAll(p, sc)
		}
		if err != nil {
			return []Finding{{Fail, "profile", err.Error()}}
		}
	}
	var out []Finding
	for _, w := range warnings {
		out = append(out, Finding{Warn, "profile", w + " (as resolved for a container with every capability)"})
	}
	return append(out, Finding{OK, "profile", fmt.Sprintf("%s (%s) validates", name, p.Source)})
}
