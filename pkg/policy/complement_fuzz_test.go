package policy

import (
	"math"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// complementRules builds up to three allow rules of up to three conditions
// from b: the operators, arguments and values (among the edges of 32 and 64
// bits) a fuzzer picks.
func complementRules(b []byte) []specs.LinuxSyscall {
	values := []uint64{0, 1, 2, 3, 5, 8, 40, 0x7e020000, 0xfffffffe, 0xffffffff, 1 << 32, 1<<32 + 5, math.MaxUint64 - 1, math.MaxUint64}
	ops := []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual}
	next := byteReader(&b)
	var rules []specs.LinuxSyscall
	for n := next()%3 + 1; n > 0; n-- {
		r := specs.LinuxSyscall{Names: []string{"x"}, Action: specs.ActAllow}
		for c := next()%3 + 1; c > 0; c-- {
			a := specs.LinuxSeccompArg{Index: uint(next() % 2), Op: ops[next()%len(ops)], Value: values[next()%len(values)]}
			if a.Op == specs.OpMaskedEqual {
				a.ValueTwo = a.Value & values[next()%len(values)]
			}
			r.Args = append(r.Args, a)
		}
		rules = append(rules, r)
	}
	return rules
}

// FuzzComplement: for any allow rules complement accepts, every call
// matches an allow rule or a complement rule, never both, never neither
// (by evaluation, of 64 and of 32 bits; TestComplement checks the shapes
// in the kernel too).
func FuzzComplement(f *testing.F) {
	f.Add([]byte{0, 0, 0, 6, 7, 9})
	f.Add([]byte{1, 0, 0, 2, 3, 0, 0, 4, 10})
	f.Fuzz(func(t *testing.T, b []byte) {
		rules := complementRules(b)
		comp, ok := complement(rules)
		if !ok {
			return
		}
		// On a 32-bit ABI libseccomp compares the low 32 bits: exact there too.
		for _, w := range []uint64{math.MaxUint64, math.MaxUint32} {
			for _, v := range probeValues(rules) {
				allowed := slices.ContainsFunc(rules, func(r specs.LinuxSyscall) bool { return holds(r, v, w) })
				routed := slices.ContainsFunc(comp, func(a []specs.LinuxSeccompArg) bool { return holds(specs.LinuxSyscall{Args: a}, v, w) })
				if allowed == routed {
					t.Fatalf("rules %+v, complement %+v: args %#x (bits %#x): allowed %v, routed %v", rules, comp, v, w, allowed, routed)
				}
			}
		}
	})
}

// FuzzComplain: for a profile of any shape (every default, unconditional and
// argument rules of every action on syscalls with Docker's argument rules,
// write among them), each call the profile allows stays allowed in the
// filter or, routed whole, is allowed by the agent's evaluation; each call
// it would deny is routed, with the action it would have got; write stays
// as it is; and Unaudit takes complain mode back to the same protection.
func FuzzComplain(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{3, 3, 0, 1, 1, 0, 2, 6, 9, 2, 1, 5, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		sc, names := fuzzProfile(b)
		out, _, err := Complain(sc, "/x", AuditMeta{})
		if err != nil {
			t.Fatal(err)
		}
		cm, _ := ParseComplainMeta(out.ListenerMetadata)
		for _, name := range names {
			_, whole := cm.rules()[name]
			for _, args := range probeValues(sc.Syscalls) {
				want, got := evalProfile(sc, name, args), evalProfile(out, name, args)
				switch {
				case name == "write" || !denies(want) && got.Action != specs.ActNotify:
					if !got.equal(want) {
						t.Fatalf("%s(%#x): %v became %v", name, args, want, got)
					}
				case !denies(want):
					if _, _, allowed := cm.Would(name, args, false); !whole || !allowed {
						t.Fatalf("%s(%#x): allowed, but routed as a would-be denial\nprofile %+v\ncomplain %+v", name, args, protectionOf(sc), out)
					}
				case got.Action != specs.ActNotify:
					t.Fatalf("%s(%#x): would be denied (%v), but %v in complain mode\nprofile %+v\ncomplain %+v", name, args, want, got, protectionOf(sc), out)
				case whole:
					if a, _, allowed := cm.Would(name, args, false); allowed || a != want.Action {
						t.Fatalf("%s(%#x): the agent says %v (allowed %v), want %v", name, args, a, allowed, want)
					}
				}
			}
		}
		if back, _ := Unaudit(out, "/x"); !SameProtection(sc, back, "") {
			t.Fatalf("Unaudit(Complain(sc)):\n%+v\nwant %+v", protectionOf(back), protectionOf(sc))
		}
	})
}

// evalProfile is what p gives a call, as the policy reads a profile
// (treatments): an unconditional rule, else the strictest argument rule
// that holds, else the default.
func evalProfile(p *specs.LinuxSeccomp, name string, args [6]uint64) verdict {
	v := verdict{p.DefaultAction, p.DefaultErrnoRet}
	tr, ok := treatments(p)[name]
	switch {
	case !ok:
		return v
	case tr.Uncond != nil:
		return *tr.Uncond
	}
	matched := false
	for _, r := range tr.Rules {
		if Holds(r, args) {
			w := verdict{r.Action, r.ErrnoRet}
			if matched {
				w = stricter(v, w)
			}
			v, matched = w, true
		}
	}
	return v
}

// fuzzProfile builds a profile from b: any default; unconditional and
// argument rules (complementRules' shapes) of every action, on syscalls
// with Docker's argument rules and on write. names are those syscalls.
func fuzzProfile(b []byte) (*specs.LinuxSeccomp, []string) {
	next := byteReader(&b)
	e13 := uint(13)
	verdicts := []verdict{{specs.ActErrno, nil}, {specs.ActErrno, &e13}, {specs.ActKillProcess, nil}, {specs.ActAllow, nil}, {specs.ActTrap, nil}, {specs.ActLog, nil}}
	d := verdicts[next()%len(verdicts)]
	sc := &specs.LinuxSeccomp{DefaultAction: d.Action, DefaultErrnoRet: d.Errno}
	names := []string{"keyctl", "socket", "personality", "clone", "write", "mount"}
	for n := next() % 6; n > 0; n-- {
		v := verdicts[next()%len(verdicts)]
		r := specs.LinuxSyscall{Names: []string{names[next()%len(names)]}, Action: v.Action, ErrnoRet: v.Errno}
		if next()%2 == 1 {
			k := min(len(b), 4)
			r.Args, b = complementRules(b[:k])[0].Args, b[k:]
		}
		sc.Syscalls = append(sc.Syscalls, r)
	}
	return sc, names
}

// byteReader returns the bytes of *b one at a time, then zeros.
func byteReader(b *[]byte) func() int {
	return func() int {
		if len(*b) == 0 {
			return 0
		}
		v := int((*b)[0])
		*b = (*b)[1:]
		return v
	}
}
