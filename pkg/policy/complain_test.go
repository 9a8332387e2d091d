package policy

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/internal/kernelfeat"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
)

func TestComplainChoice(t *testing.T) {
	c, err := ParseConfig("t.toml", []byte(`
[[rule]]
name = "dry"
match.annotations = { team = "dry" }
enforce = false

[[rule]]
name = "may"
match.annotations = { team = "may" }
allow_complain = true

[[rule]]
name = "strict"
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		ann     map[string]string
		want    bool
		wantErr string
	}{
		{"rule says complain", map[string]string{"team": "dry"}, true, ""},
		{"annotation asks to enforce", map[string]string{"team": "dry", AnnotationComplain: "false"}, false, ""},
		{"enforced by default", map[string]string{"team": "may"}, false, ""},
		{"allowed request", map[string]string{"team": "may", AnnotationComplain: "true"}, true, ""},
		{"request not allowed", map[string]string{AnnotationComplain: "true"}, false, `annotation seccomp-shim.io/complain="true": rule "strict" enforces its profile (it has no allow_complain = true): not allowed by policy`},
		{"bad value", map[string]string{"team": "may", AnnotationComplain: "yes"}, false, `annotation seccomp-shim.io/complain="yes": must be "true" or "false"`},
		{"pause ignores the pod's request", map[string]string{"io.kubernetes.cri.container-type": "sandbox", AnnotationComplain: "true"}, false, ""},
	} {
		d, err := c.Choose(Container{Annotations: tc.ann})
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%s: %v, want %q", tc.name, err, tc.wantErr)
			}
			if tc.wantErr != "" && strings.Contains(tc.wantErr, "not allowed") && !errors.Is(err, ErrNotAllowed) {
				t.Errorf("%s: %v is not ErrNotAllowed", tc.name, err)
			}
			continue
		}
		if err != nil || d.Complain != tc.want {
			t.Errorf("%s: complain %v, %v; want %v", tc.name, d.Complain, err, tc.want)
		}
	}
}

func TestComplainConfigErrors(t *testing.T) {
	for _, tc := range []struct{ toml, want string }{
		{"[audit]\nmode = \"off\"\n[[rule]]\nname = \"x\"\nenforce = false", `config t.toml: invalid config: rule[0] (x): enforce = false: complain mode needs the notify agent, and audit.mode is off`},
		{"[audit]\nmode = \"off\"\n[[rule]]\nallow_complain = true", `rule[0] (rule[0]): allow_complain = true: complain mode needs the notify agent`},
		{"[[rule]]\nenforce = \"no\"", `toml: line 2`},
		{"[[rule]]\ncomplain = true", `unknown keys rule.complain`},
	} {
		_, err := ParseConfig("t.toml", []byte(tc.toml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %q", tc.toml, err, tc.want)
		}
	}
}

func dockerRules(t *testing.T, sc *specs.LinuxSeccomp, name string) []specs.LinuxSyscall {
	t.Helper()
	tr, ok := treatments(sc)[name]
	if !ok || tr.Uncond != nil || len(tr.Rules) == 0 {
		t.Fatalf("%s: no argument rules in Docker's profile: %+v", name, tr)
	}
	return tr.Rules
}

// probeValues are argument values around every value the rules name, their
// bits, and the edges of 32 and 64 bits, on each argument they name.
func probeValues(rules []specs.LinuxSyscall) [][6]uint64 {
	per := map[uint]map[uint64]bool{}
	add := func(i uint, v uint64) {
		if per[i] == nil {
			per[i] = map[uint64]bool{}
		}
		per[i][v] = true
	}
	for _, r := range rules {
		for _, a := range r.Args {
			for _, v := range []uint64{0, 1, 2, 0xffffffff, 1 << 32, math.MaxUint64, math.MaxUint64 - 1} {
				add(a.Index, v)
			}
			for _, v := range []uint64{a.Value, a.ValueTwo} {
				add(a.Index, v)
				add(a.Index, v+1)
				add(a.Index, v-1)
				add(a.Index, ^v)
				for b := uint64(1); b != 0; b <<= 1 {
					if v&b != 0 {
						add(a.Index, b)
						add(a.Index, v&^b)
						add(a.Index, b|1<<40)
					}
				}
			}
		}
	}
	vals := [][6]uint64{{}}
	for i, set := range per {
		var next [][6]uint64
		for _, base := range vals {
			for v := range set {
				w := base
				w[i] = v
				next = append(next, w)
			}
		}
		vals = next
	}
	return vals
}

func TestComplement(t *testing.T) {
	p, _ := LoadProfile("", ProfileDefault)
	sc, err := p.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	arg := func(i uint, op specs.LinuxSeccompOperator, v, v2 uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: i, Op: op, Value: v, ValueTwo: v2}
	}
	allow := func(args ...specs.LinuxSeccompArg) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: []string{"x"}, Action: specs.ActAllow, Args: args}
	}
	seccompOK := kernelfeat.UserNotif() == nil
	for _, tc := range []struct {
		name  string
		rules []specs.LinuxSyscall
		ok    bool
		n     int // rules in the complement, where ok
	}{
		{"docker clone", dockerRules(t, sc, "clone"), true, 7},
		{"docker socket", dockerRules(t, sc, "socket"), true, 15},
		{"docker personality", dockerRules(t, sc, "personality"), false, 0},
		{"two arguments", []specs.LinuxSyscall{allow(arg(0, specs.OpEqualTo, 5, 0), arg(1, specs.OpGreaterThan, 10, 0))}, true, 2},
		{"not equal", []specs.LinuxSyscall{allow(arg(0, specs.OpNotEqual, 40, 0))}, true, 1},
		{"one argument twice (runc ORs them)", []specs.LinuxSyscall{allow(arg(0, specs.OpGreaterEqual, 10, 0), arg(0, specs.OpLessEqual, 3, 0))}, true, 6},
		{"masked with a value", []specs.LinuxSyscall{allow(arg(2, specs.OpMaskedEqual, 0xf0, 0x30))}, true, 4},
		{"rays", []specs.LinuxSyscall{allow(arg(0, specs.OpLessThan, 3, 0)), allow(arg(0, specs.OpGreaterThan, 100, 0))}, false, 0},
		{"rays close", []specs.LinuxSyscall{allow(arg(0, specs.OpLessThan, 3, 0)), allow(arg(0, specs.OpGreaterThan, 6, 0))}, true, 4},
		{"a value above 32 bits", []specs.LinuxSyscall{allow(arg(0, specs.OpLessEqual, 0xffffffff, 0))}, false, 0},
		{"an allowed value above 32 bits", []specs.LinuxSyscall{allow(arg(1, specs.OpGreaterThan, 40, 0), arg(1, specs.OpEqualTo, 1<<32, 0))}, false, 0},
		{"never matches", []specs.LinuxSyscall{allow(arg(0, specs.OpLessThan, 0, 0))}, false, 0},
		{"masked never holds", []specs.LinuxSyscall{allow(arg(0, specs.OpMaskedEqual, 0xf, 0x10))}, false, 0},
		{"several arguments, several rules", []specs.LinuxSyscall{allow(arg(0, specs.OpEqualTo, 1, 0), arg(1, specs.OpEqualTo, 2, 0)), allow(arg(0, specs.OpEqualTo, 3, 0))}, false, 0},
	} {
		comp, ok := complement(tc.rules)
		if ok != tc.ok || ok && len(comp) != tc.n {
			t.Errorf("%s: %d rules, %v; want %d, %v", tc.name, len(comp), ok, tc.n, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		job := filterJob{Rules: tc.rules, Values: probeValues(tc.rules)}
		for _, args := range comp {
			job.Rules = append(job.Rules, specs.LinuxSyscall{Names: []string{"x"}, Action: specs.ActNotify, Args: args})
		}
		// By evaluation: each call matches an allow rule or a complement
		// rule, never both, never neither.
		want := make([]int, len(job.Values))
		for i, v := range job.Values {
			allowed := slices.ContainsFunc(tc.rules, func(r specs.LinuxSyscall) bool { return Holds(r, v) })
			routed := slices.ContainsFunc(comp, func(a []specs.LinuxSeccompArg) bool { return Holds(specs.LinuxSyscall{Args: a}, v) })
			if allowed == routed {
				t.Errorf("%s: args %#x: allowed %v, routed %v", tc.name, v, allowed, routed)
			}
			want[i] = markNotify
			if allowed {
				want[i] = markAllow
			}
		}
		// By the kernel, the filter built by libseccomp as runc builds it.
		if !seccompOK {
			t.Logf("%s: kernel check skipped: no seccomp user notification here", tc.name)
			continue
		}
		got := kernelAnswers(t, job)
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: args %#x: the filter answered errno %d, want %d (%d: allowed, %d: routed)", tc.name, job.Values[i], got[i], want[i], markAllow, markNotify)
			}
		}
		t.Logf("%s: %d calls checked, %d complement rules", tc.name, len(job.Values), len(comp))
	}
}

func TestComplainDefault(t *testing.T) {
	p, _ := LoadProfile("", ProfileDefault)
	sc, _ := p.Resolve(nil)
	out, warnings, err := Complain(sc, "/run/x.sock", AuditMeta{Rule: "r", Profile: "default"})
	if err != nil || len(warnings) != 0 {
		t.Fatal(err, warnings)
	}
	if _, err := Validate(&Profile{Name: "complain", Source: "test"}, out); err != nil {
		t.Fatalf("the complain profile must validate: %v", err)
	}
	m, err := ParseAuditMeta(out.ListenerMetadata)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := ParseComplainMeta(out.ListenerMetadata)
	if err != nil || cm == nil || !IsComplain(out, "/run/x.sock") {
		t.Fatalf("complain meta %+v, %v", cm, err)
	}
	if m.Errno != 1 || m.Errnos["clone3"] != 38 || len(cm.Rules["personality"]) != 5 || len(cm.Rules) != 1 {
		t.Fatalf("meta %+v, complain %+v", m, cm)
	}
	before, after := treatments(sc), treatments(out)
	for n := range unotify.SyscallNames() {
		b, a := before[n], after[n]
		switch {
		case n == "write" || b.allow():
			if !equalJSON(a, b) {
				t.Errorf("%s: %+v became %+v", n, b, a)
			}
		case n == "clone" || n == "socket":
			// The allow rules stay, the rest is notified.
			for _, r := range a.Rules {
				if r.Action != specs.ActAllow && r.Action != specs.ActNotify {
					t.Errorf("%s: rule %+v", n, r)
				}
			}
			if len(a.Rules) <= len(b.Rules) {
				t.Errorf("%s: no complement: %+v", n, a)
			}
		default: // denied, by default or by name, or personality: notified whole
			if a.Uncond == nil || a.Uncond.Action != specs.ActNotify {
				t.Errorf("%s: was %+v, now %+v: not notified", n, b, a)
			}
		}
	}
	// Taken back, it is the profile it was.
	back, ours := Unaudit(out, "/run/x.sock")
	if !ours || !SameProtection(sc, back, "") {
		t.Fatalf("Unaudit does not give the profile back:\n%+v\n%+v", protectionOf(sc), protectionOf(back))
	}
	// What the agent tells personality's calls.
	for _, tc := range []struct {
		v       uint64
		allowed bool
	}{{0, true}, {8, true}, {0xffffffff, true}, {1, false}, {0x400000, false}} {
		if act, e, allowed := cm.Would("personality", [6]uint64{tc.v}, false); allowed != tc.allowed || !allowed && (act != specs.ActErrno || e != 1) {
			t.Errorf("personality(%#x): %s %d %v", tc.v, act, e, allowed)
		}
	}
}

func TestComplainActions(t *testing.T) {
	e := uint(13)
	sc := &specs.LinuxSeccomp{
		DefaultAction: specs.ActKillProcess,
		Architectures: []specs.Arch{nativeArch()},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "exit_group", "getpid"}, Action: specs.ActAllow},
			{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: &e},
			{Names: []string{"kill"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 1, Op: specs.OpEqualTo, Value: 9}}},
			{Names: []string{"kill"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Op: specs.OpEqualTo, Value: 0}}},
		},
	}
	out, warnings, err := Complain(sc, "/x", AuditMeta{})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "write stays") {
		t.Errorf("warnings %q", warnings)
	}
	m, _ := ParseAuditMeta(out.ListenerMetadata)
	cm, _ := ParseComplainMeta(out.ListenerMetadata)
	if m.Errno != 1 || m.Errnos["mkdir"] != 13 || cm.Actions["getppid"] != specs.ActKillProcess || cm.Actions["mkdir"] != "" || len(cm.Rules["kill"]) != 2 {
		t.Fatalf("meta %+v %+v", m, cm)
	}
	for _, tc := range []struct {
		sig     uint64
		act     specs.LinuxSeccompAction
		allowed bool
	}{{0, specs.ActAllow, true}, {9, specs.ActErrno, false}, {15, specs.ActKillProcess, false}} {
		if act, _, allowed := cm.Would("kill", [6]uint64{1, tc.sig}, false); act != tc.act || allowed != tc.allowed {
			t.Errorf("kill(1, %d): %s %v", tc.sig, act, allowed)
		}
	}
	back, _ := Unaudit(out, "/x")
	if !SameProtection(sc, back, "") {
		t.Fatalf("Unaudit:\n%+v\n%+v", protectionOf(sc), protectionOf(back))
	}
	if _, _, err := Complain(&specs.LinuxSeccomp{DefaultAction: specs.ActErrno, ListenerPath: "/other"}, "/x", AuditMeta{}); err == nil {
		t.Error("a profile with its own listener was put in complain mode")
	}
}

// FuzzComplainMeta: listenerMetadata reaches the agent from a spec; whatever
// it holds, reading it, evaluating its rules and taking the routing back
// never panic.
func FuzzComplainMeta(f *testing.F) {
	p, _ := LoadProfile("", ProfileDefault)
	sc, _ := p.Resolve(nil)
	out, _, _ := Complain(sc, "/x", AuditMeta{})
	f.Add(out.ListenerMetadata, uint64(0x400000))
	f.Add(`{"v":1,"complain":{"rules":{"kill":[{"action":"SCMP_ACT_ALLOW","args":[{"index":9,"value":1,"op":"SCMP_CMP_EQ"}]}]},"actions":{"x":"SCMP_ACT_KILL"}}}`, uint64(1))
	f.Fuzz(func(t *testing.T, md string, arg uint64) {
		cm, err := ParseComplainMeta(md)
		if err != nil || cm == nil {
			return
		}
		for n := range cm.Rules {
			cm.Would(n, [6]uint64{arg, arg, arg, arg, arg, arg}, false)
			cm.Would(n, [6]uint64{arg, arg, arg, arg, arg, arg}, true)
		}
		routed := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, ListenerPath: "/x", ListenerMetadata: md, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"personality", "kill", "x"}, Action: specs.ActNotify},
			{Names: []string{"socket"}, Action: specs.ActNotify, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: arg}}},
		}}
		Unaudit(routed, "/x")
	})
}

// TestComplainWould32: on a 32-bit ABI (x86, x32) libseccomp compares the
// low 32 bits of each argument and value; the agent's evaluation of a
// syscall routed whole must too, or a call the filter would deny is let
// through unrecorded.
func TestComplainWould32(t *testing.T) {
	cm := &ComplainMeta{DefaultAction: specs.ActErrno, Rules: map[string][]specs.LinuxSyscall{
		"personality": {{Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpNotEqual, Value: 8}}}},
		"x":           {{Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpMaskedEqual, Value: 1<<32 | 0xf, ValueTwo: 1<<32 | 1}}}},
	}}
	for _, tc := range []struct {
		name    string
		arg     uint64
		bits32  bool
		allowed bool
	}{
		{"personality", 0x1_0000_0008, false, true},
		{"personality", 0x1_0000_0008, true, false}, // the filter sees 8
		{"personality", 9, true, true},
		{"x", 0x1_0000_0001, false, true},
		{"x", 1, false, false},
		{"x", 1, true, true}, // the filter's mask is 0xf, its value 1
	} {
		if _, _, allowed := cm.Would(tc.name, [6]uint64{tc.arg}, tc.bits32); allowed != tc.allowed {
			t.Errorf("%s(%#x), 32-bit %v: allowed %v, want %v", tc.name, tc.arg, tc.bits32, allowed, tc.allowed)
		}
	}
}
