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
	next := func() int {
		if len(b) == 0 {
			return 0
		}
		v := int(b[0])
		b = b[1:]
		return v
	}
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
