package policy

import (
	"encoding/json"
	"runtime"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestSuggest(t *testing.T) {
	base, _ := LoadProfile("", ProfileDefault)
	calls := []Call{
		{Syscall: "keyctl"}, {Syscall: "keyctl"},
		{Syscall: "socket", Args: [6]uint64{40, 1}},
		{Syscall: "personality", Args: [6]uint64{0x400000}},
		{Syscall: "clone3"},
		{Syscall: "clone", Args: [6]uint64{0x10000011, 0x7fff0000}}, // CLONE_NEWUSER|SIGCHLD, a stack
		{Syscall: "syscall_999"},
	}
	out, skipped, err := Suggest(base, calls)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(skipped, []string{"syscall_999"}) {
		t.Errorf("skipped %q", skipped)
	}
	sc := validSuggestion(t, out, nil)
	tr := treatments(sc)
	if !tr["keyctl"].allow() || !tr["clone3"].allow() {
		t.Errorf("keyctl %+v, clone3 %+v: not allowed", tr["keyctl"], tr["clone3"])
	}
	// Exactly the values used, nothing more: put it in complain mode, and
	// only what the workload did not do is still a would-be denial.
	before, _ := base.Resolve(nil)
	cb, _, _ := Complain(before, "/x", AuditMeta{})
	ca, _, _ := Complain(sc, "/x", AuditMeta{})
	wouldDeny := func(sc *specs.LinuxSeccomp, c Call) bool {
		cm, _ := ParseComplainMeta(sc.ListenerMetadata)
		if _, ok := cm.Rules[c.Syscall]; ok {
			_, _, allowed := cm.Would(c.Syscall, c.Args, false)
			return !allowed
		}
		for _, r := range sc.Syscalls {
			if slices.Contains(r.Names, c.Syscall) && r.Action == specs.ActNotify && Holds(r, c.Args) {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		c            Call
		before, then bool
	}{
		{Call{Syscall: "keyctl"}, true, false},
		{Call{Syscall: "socket", Args: [6]uint64{40, 1}}, true, false},
		{Call{Syscall: "socket", Args: [6]uint64{40, 2}}, true, false}, // the rule looks at the family only
		{Call{Syscall: "socket", Args: [6]uint64{38}}, true, true},
		{Call{Syscall: "socket", Args: [6]uint64{2}}, false, false},
		{Call{Syscall: "personality", Args: [6]uint64{0x400000}}, true, false},
		{Call{Syscall: "personality", Args: [6]uint64{0x400001}}, true, true},
		{Call{Syscall: "add_key"}, true, true},
		// Docker's clone rule looks at argument 1 on s390 only: elsewhere
		// the child's stack is no part of the suggestion.
		{Call{Syscall: "clone", Args: [6]uint64{0x10000011, 0x12340000}}, true, false},
		{Call{Syscall: "clone", Args: [6]uint64{0x20000011}}, true, true},
	} {
		if tc.c.Syscall == "clone" && runtime.GOARCH == "s390x" {
			continue // the flags are argument 1 there
		}
		if b, a := wouldDeny(cb, tc.c), wouldDeny(ca, tc.c); b != tc.before || a != tc.then {
			t.Errorf("%s %#x: would be denied %v, then %v; want %v, %v", tc.c.Syscall, tc.c.Args, b, a, tc.before, tc.then)
		}
	}
}

// TestSuggestConditionalDenial: a profile allowing by default with argument
// rules that deny (kill with SIGKILL, with SIGTERM): the suggestion lets the
// calls made through, which the denial they matched would have outranked,
// validates, and keeps the denial the workload never met.
func TestSuggestConditionalDenial(t *testing.T) {
	base, err := ParseProfile("p", "test", []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
		{"names":["kill"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":9,"op":"SCMP_CMP_EQ"}]},
		{"names":["kill"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":15,"op":"SCMP_CMP_EQ"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := Suggest(base, []Call{{Syscall: "kill", Args: [6]uint64{1, 9}}})
	if err != nil {
		t.Fatal(err)
	}
	sc := validSuggestion(t, out, nil)
	for _, tc := range []struct {
		args    [6]uint64
		allowed bool
	}{{[6]uint64{1, 9}, true}, {[6]uint64{1, 15}, false}, {[6]uint64{1, 2}, true}} {
		if v := evalProfile(sc, "kill", tc.args); denies(v) == tc.allowed {
			t.Errorf("kill%v: %v, want allowed %v\n%s", tc.args[:2], v, tc.allowed, out)
		}
	}
}

// FuzzSuggest: for a profile of any shape that validates, and any calls
// (denied, or allowed already), the suggestion validates and allows them.
func FuzzSuggest(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, uint8(1), uint64(3), uint8(2), uint64(0x10000))
	f.Add([]byte{0, 2, 1, 3, 1, 1, 2, 1, 0, 1, 3, 0, 2}, uint8(3), uint64(0), uint8(3), uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, w1 uint8, a1 uint64, w2 uint8, a2 uint64) {
		sc, names := fuzzProfile(b)
		data, _ := json.Marshal(sc)
		base, err := ParseProfile("base", "fuzz", data)
		if err != nil {
			return
		}
		if bsc, err := base.Resolve(nil); err != nil || func() bool { _, err := Validate(base, bsc); return err != nil }() {
			return
		}
		calls := []Call{
			{Syscall: names[int(w1)%len(names)], Args: [6]uint64{a1, a1, a1, a1, a1, a1}},
			{Syscall: names[int(w2)%len(names)], Args: [6]uint64{a2, a2, a2, a2, a2, a2}},
		}
		out, _, err := Suggest(base, calls)
		if err != nil {
			t.Fatal(err)
		}
		ssc := validSuggestion(t, out, data)
		for _, c := range calls {
			if v := evalProfile(ssc, c.Syscall, c.Args); denies(v) {
				t.Fatalf("%s(%#x): still %v\nbase %s\nsuggested %s", c.Syscall, c.Args[0], v, data, out)
			}
		}
	})
}

// validSuggestion is the suggestion out resolved, failing t unless it
// validates (base, where known, said in the failure).
func validSuggestion(t *testing.T, out, base []byte) *specs.LinuxSeccomp {
	t.Helper()
	p, err := ParseProfile("suggested", "test", out)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := p.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Validate(p, sc); err != nil {
		t.Fatalf("the suggestion must validate: %v\nbase %s\nsuggested %s", err, base, out)
	}
	return sc
}
