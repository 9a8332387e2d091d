package nriplugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	nrigen "github.com/containerd/nri/pkg/runtime-tools/generate"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/seccomp-shim/seccomp-shim/internal/hook"
	"github.com/seccomp-shim/seccomp-shim/internal/inject"
	"github.com/seccomp-shim/seccomp-shim/internal/nriplugin"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// rules is the node's policy in every case, with its audit section
// appended: by pod annotation, namespace and container type, every
// `existing` mode, an architecture choice, and the built-in default rule
// (profile default, keep) for everything else.
const rules = `
[[rule]]
name = "pause"
match.annotations = { "io.kubernetes.cri.container-type" = "sandbox" }
profile = "default"
existing = "replace"

[[rule]]
name = "tenants"
match.namespaces = ["team-a"]
profile = "eacces"
existing = "tighten"
allowed_profiles = ["enoent"]

[[rule]]
name = "replaced"
match.namespaces = ["replace"]
profile = "eacces"
existing = "replace"
architectures = "native"

[[rule]]
name = "debug"
match.namespaces = ["debug"]
profile = "unconfined"
allow_unconfined = true
existing = "keep"
`

const (
	eacces = `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`
	enoent = `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl","add_key"],"action":"SCMP_ACT_ERRNO","errnoRet":2}]}`
)

// Complain mode (docs/complain.md): by rule, and by annotation where allowed.
const (
	staging = `
[[rule]]
name = "staging"
match.namespaces = ["staging"]
profile = "eacces"
existing = "replace"
enforce = false
`
	complainAllowed = `
[[rule]]
name = "team-c"
match.namespaces = ["team-c"]
existing = "tighten"
allow_complain = true
`
)

// Engine profiles as containerd sets them: RuntimeDefault is its own
// default (here a small allow-list), Localhost a file's.
var (
	runtimeDefault = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: ptr(uint(1)),
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write", "exit_group", "getpid", "keyctl", "chroot"}, Action: specs.ActAllow},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}}}}
	localhost = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActErrno, ErrnoRet: ptr(uint(38))}}}
)

func ptr[T any](v T) *T { return &v }

// parityCase is one container as CRI shows it: the pod's namespace and
// annotations, the container's type, its CRI profile kind and the OCI
// policy the engine made of it.
type parityCase struct {
	name, namespace string
	podAnn          map[string]string
	ctrAnn          map[string]string // the CRI container config's: NRI shows them over the spec's
	sandbox         bool
	privileged      bool // all capabilities, and containerd sets no policy
	kind            api.SecurityProfile_ProfileType
	before          *specs.LinuxSeccomp
	agent           bool   // the notify agent answers
	audit           string // the [audit] section
	rule            string // a rule before the others
	// What all three must give.
	wantErr      string
	wantNone     bool   // no linux.seccomp
	wantDefault  string // its defaultAction
	wantListener bool
	wantArchs    []string // where set
	wantMeta     string   // in listenerMetadata, where set
}

var parityCases = []parityCase{
	{name: "no profile", namespace: "web", kind: api.SecurityProfile_UNCONFINED, agent: true, wantDefault: "SCMP_ACT_ERRNO", wantListener: true},
	{name: "no profile, agent down", namespace: "web", kind: api.SecurityProfile_UNCONFINED, wantDefault: "SCMP_ACT_ERRNO"},
	{name: "unconfined overridden by tenants", namespace: "team-a", kind: api.SecurityProfile_UNCONFINED, agent: true, wantDefault: "SCMP_ACT_ALLOW", wantListener: true},
	{name: "unconfined allowed by debug", namespace: "debug", kind: api.SecurityProfile_UNCONFINED, agent: true, wantNone: true},
	{name: "runtime default kept", namespace: "web", kind: api.SecurityProfile_RUNTIME_DEFAULT, before: runtimeDefault, agent: true, wantDefault: "SCMP_ACT_ERRNO", wantListener: true},
	{name: "runtime default kept, agent down", namespace: "web", kind: api.SecurityProfile_RUNTIME_DEFAULT, before: runtimeDefault, wantDefault: "SCMP_ACT_ERRNO"},
	{name: "runtime default tightened", namespace: "team-a", kind: api.SecurityProfile_RUNTIME_DEFAULT, before: runtimeDefault, agent: true, wantDefault: "SCMP_ACT_ERRNO", wantListener: true},
	{name: "localhost kept", namespace: "web", kind: api.SecurityProfile_LOCALHOST, before: localhost, agent: true, wantDefault: "SCMP_ACT_ALLOW", wantListener: true},
	{name: "localhost tightened", namespace: "team-a", kind: api.SecurityProfile_LOCALHOST, before: localhost, agent: true, wantDefault: "SCMP_ACT_ALLOW", wantListener: true},
	{name: "localhost replaced, native architecture", namespace: "replace", kind: api.SecurityProfile_LOCALHOST, before: localhost, agent: true, wantDefault: "SCMP_ACT_ALLOW", wantListener: true,
		wantArchs: []string{"SCMP_ARCH_X86_64"}},
	{name: "annotation allowed", namespace: "team-a", podAnn: map[string]string{policy.AnnotationProfile: "enoent"}, kind: api.SecurityProfile_UNCONFINED, agent: true, wantDefault: "SCMP_ACT_ALLOW", wantListener: true},
	{name: "annotation refused", namespace: "team-a", podAnn: map[string]string{policy.AnnotationProfile: "strict"}, kind: api.SecurityProfile_UNCONFINED, agent: true,
		wantErr: `annotation seccomp-shim.io/profile="strict": rule "tenants" allows only ["eacces" "enoent"]: not allowed by policy`},
	{name: "pause ignores the annotation", namespace: "team-a", podAnn: map[string]string{policy.AnnotationProfile: "strict"}, sandbox: true, kind: api.SecurityProfile_UNCONFINED, agent: true, wantDefault: "SCMP_ACT_ERRNO", wantListener: true},
	{name: "complain by rule", namespace: "staging", rule: staging, kind: api.SecurityProfile_UNCONFINED, agent: true, wantDefault: "SCMP_ACT_ALLOW", wantListener: true, wantMeta: "complain"},
	{name: "complain by rule, agent down: enforced", namespace: "staging", rule: staging, kind: api.SecurityProfile_UNCONFINED, wantDefault: "SCMP_ACT_ALLOW"},
	{name: "complain by annotation", namespace: "team-c", rule: complainAllowed, podAnn: map[string]string{"seccomp-shim.io/complain": "true"}, kind: api.SecurityProfile_RUNTIME_DEFAULT,
		before: runtimeDefault, agent: true, wantDefault: "SCMP_ACT_ERRNO", wantListener: true, wantMeta: "complain"},
	{name: "complain refused", namespace: "team-a", podAnn: map[string]string{"seccomp-shim.io/complain": "true"}, kind: api.SecurityProfile_UNCONFINED, agent: true,
		wantErr: `rule "tenants" enforces its profile`},
	// A privileged container asking RuntimeDefault (the kubelet's
	// SeccompDefault): containerd sets no policy, and the profile the
	// policy injects is resolved for all capabilities, as the shim sees
	// them (mount allowed by CAP_SYS_ADMIN...).
	{name: "privileged, runtime default asked", namespace: "web", privileged: true, kind: api.SecurityProfile_RUNTIME_DEFAULT, agent: true, wantDefault: "SCMP_ACT_ERRNO", wantListener: true},
	{name: "privileged, localhost asked", namespace: "team-a", privileged: true, kind: api.SecurityProfile_LOCALHOST, agent: true, wantDefault: "SCMP_ACT_ALLOW", wantListener: true},
	// containerd 2.4's NRI shows a container's annotations as the spec's
	// overlaid with its CRI config's (a device plugin's, through the
	// kubelet), while the spec keeps containerd's own: the namespace, pod
	// and container the policy matches are containerd's.
	{name: "config annotations naming another namespace", namespace: "team-a", ctrAnn: map[string]string{"io.kubernetes.cri.sandbox-namespace": "debug",
		"io.kubernetes.cri.container-name": "x", "io.kubernetes.cri.sandbox-name": "x", "io.kubernetes.cri.container-type": "sandbox"},
		kind: api.SecurityProfile_UNCONFINED, agent: true, wantDefault: "SCMP_ACT_ALLOW", wantListener: true},
	{name: "audit off", namespace: "web", kind: api.SecurityProfile_UNCONFINED, agent: true, audit: `mode = "off"`, wantDefault: "SCMP_ACT_ERRNO"},
	{name: "agent down, refused", namespace: "web", kind: api.SecurityProfile_UNCONFINED, audit: "mode = \"always\"\nunreachable = \"refuse\"", wantErr: "notify agent unreachable"},
}

// env is one case's node: its config file, profiles and agent socket, all
// under a temp dir.
type env struct {
	dir, config string
	getenv      func(string) string
}

func newEnv(t *testing.T, c parityCase) env {
	t.Helper()
	dir := t.TempDir()
	e := env{dir: dir, config: filepath.Join(dir, "config.toml")}
	if err := os.Mkdir(filepath.Join(dir, "profiles"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]string{"eacces": eacces, "enoent": enoent} {
		if err := os.WriteFile(filepath.Join(dir, "profiles", name+".json"), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	socket := filepath.Join(dir, "agent.sock")
	conf := "[profiles]\ndir = " + quote(filepath.Join(dir, "profiles")) + "\n[log]\nfile = " + quote(filepath.Join(dir, "decisions.log")) +
		"\n[audit]\nsocket = " + quote(socket) + "\n" + c.audit + "\n" + c.rule + "\n" + rules
	if err := os.WriteFile(e.config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if c.agent {
		// Enough for inject.Reach, which only connects.
		l, err := net.Listen("unix", socket)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
	}
	e.getenv = func(k string) string {
		switch k {
		case policy.ConfigEnv:
			return e.config
		case policy.RunDirEnv:
			return filepath.Join(dir, "run")
		}
		return ""
	}
	return e
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

// criAnnotations are what containerd's CRI puts in a container's spec.
func criAnnotations(c parityCase) map[string]string {
	typ := "container"
	if c.sandbox {
		typ = "sandbox"
	}
	return map[string]string{
		"io.kubernetes.cri.container-type":    typ,
		"io.kubernetes.cri.container-name":    "app",
		"io.kubernetes.cri.sandbox-id":        "sandbox-1",
		"io.kubernetes.cri.sandbox-name":      "pod",
		"io.kubernetes.cri.sandbox-namespace": c.namespace,
	}
}

// ociSpec is the config.json containerd writes for the case, with the pod's
// seccomp-shim.io annotations as `pod_annotations` passes them.
func ociSpec(t *testing.T, c parityCase) []byte {
	t.Helper()
	ann := criAnnotations(c)
	maps.Copy(ann, c.podAnn)
	caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
		"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
	if c.privileged {
		// containerd's WithPrivileged: every capability.
		caps = nil
		for _, c := range capability.ListKnown() {
			caps = append(caps, "CAP_"+strings.ToUpper(c.String()))
		}
	}
	s := specs.Spec{
		Version:     specs.Version,
		Annotations: ann,
		Process: &specs.Process{Args: []string{"/bin/app", "--serve"}, Env: []string{"PATH=/bin"}, Cwd: "/",
			Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}},
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: "pod",
		Linux:    &specs.Linux{Seccomp: c.before, Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}}},
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nriContainer is what containerd's NRI shows of the same container.
func nriContainer(c parityCase) (*api.PodSandbox, *api.Container) {
	pod := &api.PodSandbox{Id: "sandbox-1", Name: "pod", Namespace: c.namespace, Uid: "uid-1", Annotations: c.podAnn}
	ctr := &api.Container{Id: "ctr-1", PodSandboxId: "sandbox-1", Name: "app", Annotations: criAnnotations(c),
		Args: []string{"/bin/app", "--serve"}, Env: []string{"PATH=/bin"},
		Linux: &api.LinuxContainer{SeccompProfile: &api.SecurityProfile{ProfileType: c.kind}}}
	maps.Copy(ctr.Annotations, c.ctrAnn)
	if c.before != nil {
		ctr.Linux.SeccompPolicy = api.FromOCILinuxSeccomp(c.before)
	}
	return pod, ctr
}

func seccompOf(t *testing.T, spec []byte) *specs.LinuxSeccomp {
	t.Helper()
	var s specs.Spec
	if err := json.Unmarshal(spec, &s); err != nil {
		t.Fatalf("%v\n%s", err, spec)
	}
	if s.Linux == nil {
		return nil
	}
	return s.Linux.Seccomp
}

// viaShim is what seccomp-shim does on create: inject.File on the bundle's
// config.json.
func viaShim(t *testing.T, e env, c parityCase) (*specs.LinuxSeccomp, error) {
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, ociSpec(t, c), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := policy.Load(e.getenv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inject.File(cfg, path, "ctr-1", inject.Reach(cfg)); err != nil {
		return nil, err
	}
	out, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return seccompOf(t, out), nil
}

// viaHook runs seccomp-hook precreate, the spec on stdin.
func viaHook(t *testing.T, e env, c parityCase) (*specs.LinuxSeccomp, error) {
	var stdout, stderr bytes.Buffer
	h := &hook.Hook{Args: []string{"seccomp-hook", "--config", e.config, "precreate"}, Getenv: e.getenv,
		Stdin: bytes.NewReader(ociSpec(t, c)), Stdout: &stdout, Stderr: &stderr}
	if h.Run() != 0 {
		return nil, errorString(stderr.String())
	}
	return seccompOf(t, stdout.Bytes()), nil
}

type errorString string

func (e errorString) Error() string { return string(e) }

// viaPlugin runs the plugin's CreateContainer handler, as NRI calls it, and
// applies its adjustment as containerd does.
func viaPlugin(t *testing.T, e env, c parityCase) (*specs.LinuxSeccomp, error) {
	log := logrus.New()
	log.Out = io.Discard
	p := &nriplugin.Plugin{Load: func() (*policy.Config, error) { return policy.Load(e.getenv) }, Log: log, Metrics: nriplugin.NewMetrics()}
	pod, ctr := nriContainer(c)
	adj, updates, err := p.CreateContainer(context.Background(), pod, ctr)
	if err != nil {
		return nil, err
	}
	if len(updates) != 0 {
		t.Errorf("plugin: updates to other containers: %v", updates)
	}
	return applyNRI(t, c.before, adj), nil
}

// applyNRI applies adj's seccomp policy to a spec whose linux.seccomp is
// before with the code containerd 2.x runs on the plugins' adjustments
// (NRI's generate.Generator), and returns linux.seccomp.
func applyNRI(t *testing.T, before *specs.LinuxSeccomp, adj *api.ContainerAdjustment) *specs.LinuxSeccomp {
	t.Helper()
	s := &specs.Spec{Linux: &specs.Linux{Seccomp: before}}
	g := &nrigen.Generator{Config: s}
	if err := g.AdjustSeccompPolicy(adj.GetLinux().GetSeccompPolicy()); err != nil {
		t.Fatal(err)
	}
	return s.Linux.Seccomp
}

// asRuncReads is sc as runc reads it: an SCMP_ACT_ERRNO default without
// defaultErrnoRet answers EPERM. NRI drops defaultErrnoRet
// (TestDefaultErrnoThroughNRI); where it is EPERM, nothing is lost.
func asRuncReads(sc *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	if sc == nil || sc.DefaultAction != specs.ActErrno || sc.DefaultErrnoRet != nil {
		return sc
	}
	c := *sc
	c.DefaultErrnoRet = ptr(uint(unix.EPERM))
	return &c
}

// TestParity: one table through the three entry points; each gives the
// same linux.seccomp, or fails with the same reason.
func TestParity(t *testing.T) {
	for _, c := range parityCases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c)
			var got [3][]byte
			for i, via := range []func(*testing.T, env, parityCase) (*specs.LinuxSeccomp, error){viaShim, viaHook, viaPlugin} {
				name := [...]string{"shim", "hook", "plugin"}[i]
				if c.sandbox && name == "plugin" {
					// NRI never shows a pause container (docs/nri.md,
					// Limits), and the plugin takes what it shows for a
					// container.
					got[i] = got[0]
					continue
				}
				sc, err := via(t, e, c)
				if c.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), c.wantErr) {
						t.Errorf("%s: error %v, want %q", name, err, c.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				got[i], _ = json.Marshal(asRuncReads(sc))
				switch {
				case c.wantNone:
					if sc != nil {
						t.Errorf("%s: linux.seccomp %s, want none", name, got[i])
					}
					continue
				case sc == nil:
					t.Fatalf("%s: no linux.seccomp", name)
				}
				if string(sc.DefaultAction) != c.wantDefault || (sc.ListenerPath != "") != c.wantListener {
					t.Errorf("%s: defaultAction %s, listener %q; want %s, listener %v", name, sc.DefaultAction, sc.ListenerPath, c.wantDefault, c.wantListener)
				}
				if !strings.Contains(sc.ListenerMetadata, c.wantMeta) {
					t.Errorf("%s: listenerMetadata %q, want %q in it", name, sc.ListenerMetadata, c.wantMeta)
				}
				if archs := fmt.Sprint(sc.Architectures); c.wantArchs != nil && archs != fmt.Sprint(c.wantArchs) {
					t.Errorf("%s: architectures %s, want %s", name, archs, c.wantArchs)
				}
			}
			if !bytes.Equal(got[0], got[1]) || !bytes.Equal(got[0], got[2]) {
				t.Errorf("linux.seccomp differs:\nshim   %s\nhook   %s\nplugin %s", got[0], got[1], got[2])
			}
		})
	}
}

// TestAdjust: the adjustment in NRI's types. Routed to the agent, the
// policy carries listenerPath and the metadata naming rule and profile; a
// profile that stays as it is gives no adjustment; NRI can't remove a
// policy, so "unconfined" over the engine's profile keeps it and says so.
func TestAdjust(t *testing.T) {
	c := parityCase{namespace: "web", kind: api.SecurityProfile_UNCONFINED, agent: true}
	e := newEnv(t, c)
	cfg, err := policy.Load(e.getenv)
	if err != nil {
		t.Fatal(err)
	}
	pod, ctr := nriContainer(c)
	adj, res, err := nriplugin.Adjust(cfg, pod, ctr, nil)
	if err != nil {
		t.Fatal(err)
	}
	sp := adj.GetLinux().GetSeccompPolicy()
	if res.Action != policy.ActionInjected || sp == nil || sp.ListenerPath != cfg.Audit.Socket ||
		!strings.Contains(sp.ListenerMetadata, "default") || sp.DefaultAction != "SCMP_ACT_ERRNO" {
		t.Errorf("no profile: %s, adjustment %v", res.Action, sp)
	}

	// Kept as it is: audit off and the engine's profile kept.
	off := parityCase{namespace: "web", kind: api.SecurityProfile_LOCALHOST, before: localhost, audit: `mode = "off"`}
	e = newEnv(t, off)
	if cfg, err = policy.Load(e.getenv); err != nil {
		t.Fatal(err)
	}
	pod, ctr = nriContainer(off)
	if adj, res, err = nriplugin.Adjust(cfg, pod, ctr, nil); err != nil || adj != nil || res.Action != policy.ActionKept {
		t.Errorf("kept, audit off: %v, %v, %v; want no adjustment", adj, res, err)
	}

	// Unconfined by policy over the engine's profile.
	cfg, err = policy.ParseConfig("test.toml", []byte("[profiles]\ndir = \"\"\n[audit]\nmode = \"off\"\n[[rule]]\nprofile = \"unconfined\"\nallow_unconfined = true\nexisting = \"replace\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	rd := parityCase{namespace: "web", kind: api.SecurityProfile_RUNTIME_DEFAULT, before: runtimeDefault}
	pod, ctr = nriContainer(rd)
	adj, res, err = nriplugin.Adjust(cfg, pod, ctr, nil)
	if err != nil || adj != nil || res.Action != policy.ActionKept || len(res.Warnings) == 0 {
		t.Errorf("unconfined over RuntimeDefault: %v, %+v, %v; want kept with a warning", adj, res, err)
	}
}

// TestSpecAnnotations: a pod's seccomp-shim.io annotations reach the
// policy, others don't, and the container's own win.
func TestSpecAnnotations(t *testing.T) {
	pod := &api.PodSandbox{Annotations: map[string]string{policy.AnnotationProfile: "pod", "seccomp-shim.io/x": "pod", "other": "pod"}}
	ctr := &api.Container{Annotations: map[string]string{"seccomp-shim.io/x": "ctr"}}
	b, err := nriplugin.Spec(pod, ctr)
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{policy.AnnotationProfile: "pod", "seccomp-shim.io/x": "ctr"}
	if !maps.Equal(s.Annotations, want) {
		t.Errorf("annotations %v, want %v", s.Annotations, want)
	}
	if s.Linux != nil && s.Linux.Seccomp != nil {
		t.Errorf("linux.seccomp %v for a container without one", s.Linux.Seccomp)
	}
}

// TestLogAndCount: each decision goes to log.file with the pod's names, as
// the shim's do, and to the metrics; a refusal to both and to the agent's log.
func TestLogAndCount(t *testing.T) {
	c := parityCase{namespace: "team-a", podAnn: map[string]string{policy.AnnotationProfile: "strict"}, kind: api.SecurityProfile_UNCONFINED}
	e := newEnv(t, c)
	var agentLog bytes.Buffer
	log := logrus.New()
	log.Out = &agentLog
	m := nriplugin.NewMetrics()
	p := &nriplugin.Plugin{Load: func() (*policy.Config, error) { return policy.Load(e.getenv) }, Log: log, Metrics: m}
	pod, ctr := nriContainer(c)
	if _, _, err := p.CreateContainer(context.Background(), pod, ctr); err == nil {
		t.Fatal("annotation strict: no error")
	}
	c.podAnn = nil
	pod, ctr = nriContainer(c)
	if _, _, err := p.CreateContainer(context.Background(), pod, ctr); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(e.dir, "decisions.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		t.Fatalf("log.file:\n%s", data)
	}
	var refused, injected map[string]any
	json.Unmarshal([]byte(lines[0]), &refused)
	json.Unmarshal([]byte(lines[1]), &injected)
	if refused["level"] != "error" || !strings.Contains(fmt.Sprint(refused["msg"]), "not allowed by policy") || refused["namespace"] != "team-a" {
		t.Errorf("refusal logged as %v", refused)
	}
	if injected["msg"] != "seccomp profile injected" || injected["rule"] != "tenants" || injected["profile"] != "eacces" ||
		injected["pod"] != "pod" || injected["namespace"] != "team-a" || injected["container"] != "app" ||
		injected["id"] != "ctr-1" || injected["cri_profile"] != "unconfined" || injected["component"] != "seccomp-agent nri" {
		t.Errorf("decision logged as %v", injected)
	}
	// NRI does not pass capabilities: the record says what was assumed.
	if injected["capabilities"] != nriplugin.AssumedCaps {
		t.Errorf("decision logged without the capabilities assumed: %v", injected)
	}
	if !strings.Contains(agentLog.String(), "not allowed by policy") {
		t.Errorf("agent log: %q", agentLog.String())
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collectors()...)
	want := `
# HELP seccomp_agent_nri_creates_total Containers the NRI plugin decided on, by action (injected, kept, replaced, tightened, unconfined, refused) and rule.
# TYPE seccomp_agent_nri_creates_total counter
seccomp_agent_nri_creates_total{action="injected",rule="tenants"} 1
seccomp_agent_nri_creates_total{action="refused",rule=""} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "seccomp_agent_nri_creates_total"); err != nil {
		t.Error(err)
	}
}

// TestSynchronize: at registration, running containers whose profile is not
// the policy's are reported and counted; one with the plugin's own
// (audited) profile, and stopped ones, are not.
func TestSynchronize(t *testing.T) {
	c := parityCase{namespace: "team-a", kind: api.SecurityProfile_UNCONFINED}
	e := newEnv(t, c)
	cfg, err := policy.Load(e.getenv)
	if err != nil {
		t.Fatal(err)
	}
	pod, bare := nriContainer(c)
	bare.State = api.ContainerState_CONTAINER_RUNNING
	_, ours := nriContainer(c)
	ours.Id, ours.Name, ours.State = "ctr-2", "ours", api.ContainerState_CONTAINER_RUNNING
	adj, _, err := nriplugin.Adjust(cfg, pod, ours, nil) // routed to the agent
	if err != nil {
		t.Fatal(err)
	}
	ours.Linux.SeccompPolicy = adj.GetLinux().GetSeccompPolicy()
	_, stopped := nriContainer(c)
	stopped.Id, stopped.Name, stopped.State = "ctr-3", "stopped", api.ContainerState_CONTAINER_STOPPED

	var agentLog bytes.Buffer
	log := logrus.New()
	log.Out = &agentLog
	m := nriplugin.NewMetrics()
	p := &nriplugin.Plugin{Load: func() (*policy.Config, error) { return policy.Load(e.getenv) }, Log: log, Metrics: m}
	if _, err := p.Synchronize(context.Background(), []*api.PodSandbox{pod}, []*api.Container{bare, ours, stopped}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(agentLog.String(), "escaped the policy"); n != 1 || !strings.Contains(agentLog.String(), "container=app") {
		t.Errorf("agent log:\n%s", agentLog.String())
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collectors()...)
	want := "# HELP seccomp_agent_nri_connected 1 while the NRI plugin is registered with the runtime.\n# TYPE seccomp_agent_nri_connected gauge\nseccomp_agent_nri_connected 1\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "seccomp_agent_nri_connected"); err != nil {
		t.Error(err)
	}
	if v := testutil.ToFloat64(m.Collectors()[2]); v != 1 {
		t.Errorf("seccomp_agent_nri_escaped_containers = %v, want 1", v)
	}
}

// TestRunRetries: with nothing serving NRI, Run tries again until its
// context ends, warns once, and leaves the rest to debug.
func TestRunRetries(t *testing.T) {
	var agentLog bytes.Buffer
	log := logrus.New()
	log.Out = &agentLog
	p := &nriplugin.Plugin{Load: func() (*policy.Config, error) { return nil, nil }, Log: log, Metrics: nriplugin.NewMetrics()}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	p.Run(ctx, filepath.Join(t.TempDir(), "nri.sock"), 20*time.Millisecond)
	if n := strings.Count(agentLog.String(), "level="); n != 1 || !strings.Contains(agentLog.String(), "connecting again every 20ms") {
		t.Errorf("agent log:\n%s", agentLog.String())
	}
	log.Level = logrus.DebugLevel
	agentLog.Reset()
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	p.Run(ctx, filepath.Join(t.TempDir(), "nri.sock"), 20*time.Millisecond)
	if n := strings.Count(agentLog.String(), "NRI connection refused"); n < 2 {
		t.Errorf("%d retries in 300ms every 20ms:\n%s", n, agentLog.String())
	}
}

// TestDefaultErrnoThroughNRI: NRI v0.12 (the runtime's side, which containerd
// 2.4 runs on adjustments) does not carry a policy's defaultErrnoRet, so
// runc answers the syscalls a profile does not name with EPERM. Same
// denials, another errno: the plugin starts the container and says so in
// its decision, as the shim and the hook give the profile whole.
func TestDefaultErrnoThroughNRI(t *testing.T) {
	c := parityCase{namespace: "enosys", kind: api.SecurityProfile_UNCONFINED, rule: `
[[rule]]
name = "enosys"
match.namespaces = ["enosys"]
profile = "enosys"
existing = "replace"
`}
	e := newEnv(t, c)
	enosys := `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[{"names":["read","write","exit_group"],"action":"SCMP_ACT_ALLOW"}]}`
	if err := os.WriteFile(filepath.Join(e.dir, "profiles", "enosys.json"), []byte(enosys), 0o644); err != nil {
		t.Fatal(err)
	}
	shim, err := viaShim(t, e, c)
	if err != nil {
		t.Fatal(err)
	}
	if shim.DefaultErrnoRet == nil || *shim.DefaultErrnoRet != 38 {
		t.Fatalf("shim: defaultErrnoRet %v", shim.DefaultErrnoRet)
	}
	cfg, err := policy.Load(e.getenv)
	if err != nil {
		t.Fatal(err)
	}
	pod, ctr := nriContainer(c)
	adj, res, err := nriplugin.Adjust(cfg, pod, ctr, errors.New("agent down"))
	if err != nil {
		t.Fatal(err)
	}
	got := applyNRI(t, nil, adj)
	if got == nil || got.DefaultAction != specs.ActErrno {
		t.Fatalf("plugin: %+v", got)
	}
	if got.DefaultErrnoRet != nil {
		t.Logf("NRI now carries defaultErrnoRet (%d): drop the plugin's warning", *got.DefaultErrnoRet)
	}
	if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "EPERM, not errno 38") }) {
		t.Errorf("no warning about defaultErrnoRet: %q", res.Warnings)
	}
	// EPERM's own default is no loss, and says nothing.
	c.namespace = "web"
	pod, ctr = nriContainer(c)
	if _, res, err = nriplugin.Adjust(cfg, pod, ctr, errors.New("agent down")); err != nil || len(res.Warnings) != 0 {
		t.Errorf("default profile: %v, warnings %q", err, res.Warnings)
	}
}

// TestSupported: the plugin registers with containerd 2.3 or later only
// (as containerd names itself: a go-installed one says "2.4.2+unknown"),
// and says why not to the others.
func TestSupported(t *testing.T) {
	for _, c := range []struct {
		runtime, version string
		ok               bool
	}{
		{"containerd", "2.4.2+unknown", true},
		{"containerd", "v2.3.0", true},
		{"containerd", "v2.3.0-rc.1", true},
		{"containerd", "v3.0.0", true},
		{"containerd", "v2.2.1", false},
		{"containerd", "v2.0.5", false},
		{"containerd", "1.7.27", false},
		{"containerd", "", false},
		{"containerd", "garbage", false},
		{"cri-o", "1.33.0", false},
	} {
		err := nriplugin.Supported(c.runtime, c.version)
		if (err == nil) != c.ok || err != nil && (!errors.Is(err, nriplugin.ErrRuntime) || !strings.Contains(err.Error(), "containerd 2.3 or later")) {
			t.Errorf("Supported(%q, %q) = %v, want ok %v", c.runtime, c.version, err, c.ok)
		}
	}
	log := logrus.New()
	log.Out = io.Discard
	p := &nriplugin.Plugin{Log: log, Metrics: nriplugin.NewMetrics()}
	if _, err := p.Configure(context.Background(), "", "containerd", "v2.2.1"); !errors.Is(err, nriplugin.ErrRuntime) {
		t.Errorf("Configure on containerd 2.2: %v", err)
	}
	if mask, err := p.Configure(context.Background(), "", "containerd", "v2.4.2"); err != nil || mask != 0 {
		t.Errorf("Configure on containerd 2.4: %v, %v", mask, err)
	}
}

// TestRegisterRuntime: against NRI's own runtime side (what containerd
// embeds) naming itself containerd 2.2.1, the plugin does not register and
// its log says why; naming itself 2.4.2, it registers.
func TestRegisterRuntime(t *testing.T) {
	for _, c := range []struct {
		version string
		ok      bool
	}{{"2.2.1", false}, {"2.4.2+unknown", true}} {
		dir := t.TempDir()
		socket := filepath.Join(dir, "nri.sock")
		sync := func(ctx context.Context, cb adaptation.SyncCB) error { _, err := cb(ctx, nil, nil); return err }
		update := func(context.Context, []*adaptation.ContainerUpdate) ([]*adaptation.ContainerUpdate, error) {
			return nil, nil
		}
		r, err := adaptation.New("containerd", c.version, sync, update, adaptation.WithSocketPath(socket),
			adaptation.WithPluginPath(filepath.Join(dir, "plugins")), adaptation.WithPluginConfigPath(filepath.Join(dir, "conf")))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		var agentLog bytes.Buffer
		log := logrus.New()
		log.Out = &agentLog
		p := &nriplugin.Plugin{Load: func() (*policy.Config, error) { return policy.Load(newEnv(t, parityCase{}).getenv) }, Log: log, Metrics: nriplugin.NewMetrics()}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		p.Run(ctx, socket, 100*time.Millisecond)
		cancel()
		r.Stop()
		registered := strings.Contains(agentLog.String(), "registered with NRI")
		if registered != c.ok || !c.ok && !strings.Contains(agentLog.String(), "needs containerd 2.3 or later") {
			t.Errorf("containerd %s: registered %v, want %v; agent log:\n%s", c.version, registered, c.ok, agentLog.String())
		}
	}
}

// TestSynchronizePrivileged: a privileged container the plugin gave a
// profile resolved for all capabilities (it asked RuntimeDefault, containerd
// set none) is not reported as escaped when the plugin registers again;
// the same profile on a container that asked for none, and so was resolved
// for containerd's default capabilities, is.
func TestSynchronizePrivileged(t *testing.T) {
	c := parityCase{namespace: "priv", privileged: true, kind: api.SecurityProfile_RUNTIME_DEFAULT, rule: `
[[rule]]
name = "priv"
match.namespaces = ["priv"]
profile = "default"
existing = "replace"
`}
	e := newEnv(t, c)
	cfg, err := policy.Load(e.getenv)
	if err != nil {
		t.Fatal(err)
	}
	pod, priv := nriContainer(c)
	adj, _, err := nriplugin.Adjust(cfg, pod, priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	priv.Linux.SeccompPolicy, priv.State = adj.GetLinux().GetSeccompPolicy(), api.ContainerState_CONTAINER_RUNNING
	c.kind = api.SecurityProfile_UNCONFINED
	_, other := nriContainer(c)
	other.Id, other.Name, other.State = "ctr-2", "other", api.ContainerState_CONTAINER_RUNNING
	other.Linux.SeccompPolicy = priv.Linux.SeccompPolicy
	var agentLog bytes.Buffer
	log := logrus.New()
	log.Out = &agentLog
	p := &nriplugin.Plugin{Load: func() (*policy.Config, error) { return policy.Load(e.getenv) }, Log: log, Metrics: nriplugin.NewMetrics()}
	if _, err := p.Synchronize(context.Background(), []*api.PodSandbox{pod}, []*api.Container{priv, other}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(agentLog.String(), "escaped the policy"); n != 1 || !strings.Contains(agentLog.String(), "container=other") {
		t.Errorf("agent log:\n%s", agentLog.String())
	}
}
