package policy

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
)

// ComplainMeta is what a complain-mode profile's listenerMetadata holds
// besides AuditMeta (under the key "complain"): what the agent needs to say
// exactly what each notified call would have got. The holder, which reads
// AuditMeta alone, denies them all meanwhile: without the agent a complain
// container is enforced.
type ComplainMeta struct {
	// Actions holds the would-be action of routed syscalls the profile
	// denies with something else than SCMP_ACT_ERRNO (a kill, a trap).
	Actions map[string]specs.LinuxSeccompAction `json:"actions,omitempty"`
	// Rules holds, for syscalls routed whole, the profile's own argument
	// rules: the agent evaluates them (scalar arguments only, which the
	// container can't change after the check) to tell an allowed call,
	// which it lets through unrecorded, from a would-be denial.
	Rules map[string][]specs.LinuxSyscall `json:"rules,omitempty"`
	// The profile's default, where Rules' calls fall through to.
	DefaultAction specs.LinuxSeccompAction `json:"defaultAction,omitempty"`
	DefaultErrno  *uint                    `json:"defaultErrnoRet,omitempty"`
}

// complainDoc is the listenerMetadata of a complain-mode profile.
type complainDoc struct {
	AuditMeta
	Complain *ComplainMeta `json:"complain,omitempty"`
}

// ParseComplainMeta returns the complain part of listenerMetadata written by
// Complain, or nil where the profile is not in complain mode.
func ParseComplainMeta(s string) (*ComplainMeta, error) {
	var d complainDoc
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return nil, fmt.Errorf("listener metadata: %w", err)
	}
	return d.Complain, nil
}

// IsComplain reports whether sc is routed to listener in complain mode.
func IsComplain(sc *specs.LinuxSeccomp, listener string) bool {
	if sc == nil || listener == "" || sc.ListenerPath != listener {
		return false
	}
	cm, err := ParseComplainMeta(sc.ListenerMetadata)
	return err == nil && cm != nil
}

// Complain returns sc in complain mode: every call sc would deny reaches the
// notify agent at listener (SCMP_ACT_NOTIFY), which lets it run and records
// it; every call sc allows stays allowed in the filter. The metadata says
// what each notified call would have got. Denied are:
//   - the default action's syscalls and the unconditional denials, routed
//     by name, as Audit does;
//   - the fall-through of argument rules (Docker's clone, socket): routed
//     with argument conditions whose union is exactly the calls no allow rule
//     matches (complement), where that can be said in a few rules;
//   - else the whole syscall (Docker's personality), with its rules in the
//     metadata for the agent to evaluate.
//
// write stays as sc has it (runc refuses to notify it): a profile that
// denies write keeps denying it, said in the warnings.
func Complain(sc *specs.LinuxSeccomp, listener string, meta AuditMeta) (*specs.LinuxSeccomp, []string, error) {
	if sc.ListenerPath != "" {
		return nil, nil, fmt.Errorf("complain mode: the profile already names a listener (%s)", sc.ListenerPath)
	}
	cm := &ComplainMeta{DefaultAction: sc.DefaultAction, DefaultErrno: sc.DefaultErrnoRet}
	out, err := route(sc, listener, meta, cm)
	if err != nil {
		return nil, nil, err
	}
	var warnings []string
	deny := func(r specs.LinuxSyscall) bool { return denies(verdict{r.Action, r.ErrnoRet}) }
	if w := treatments(sc)["write"]; w.Uncond != nil && denies(*w.Uncond) ||
		w.Uncond == nil && (denies(verdict{sc.DefaultAction, sc.DefaultErrnoRet}) || slices.ContainsFunc(w.Rules, deny)) {
		warnings = append(warnings, "complain mode: write stays as the profile has it (denied for some or all calls): runc can't route write to the agent")
	}
	return out, warnings, nil
}

// denies reports whether v stops the call: everything but allow and log.
// (Notify is the agent's, whose answer the caller can't know.)
func denies(v verdict) bool {
	return v.Action != specs.ActAllow && v.Action != specs.ActLog && v.Action != specs.ActNotify
}

// route is Audit (cm nil: errno denials routed by name) and Complain (cm
// set: every denial routed, the argument rules' fall-through too).
func route(sc *specs.LinuxSeccomp, listener string, meta AuditMeta, cm *ComplainMeta) (*specs.LinuxSeccomp, error) {
	meta.V = 1
	def := verdict{sc.DefaultAction, sc.DefaultErrnoRet}
	switch {
	case def.Action == specs.ActErrno:
		meta.Errno = errnoOrEPERM(def.Errno)
	case cm != nil && denies(def):
		meta.Errno = 1 // what the holder answers while no agent does: deny
	}
	// answer notes what n would get in the metadata.
	answer := func(n string, v verdict) {
		e := uint(1)
		if v.Action == specs.ActErrno {
			e = errnoOrEPERM(v.Errno)
		} else {
			if cm.Actions == nil {
				cm.Actions = map[string]specs.LinuxSeccompAction{}
			}
			cm.Actions[n] = v.Action
		}
		if e != meta.Errno {
			if meta.Errnos == nil {
				meta.Errnos = map[string]uint{}
			}
			meta.Errnos[n] = e
		}
	}
	t := treatments(sc)
	var routed []string
	var notifyRules []specs.LinuxSyscall // routed with conditions
	for n := range unotify.SyscallNames() {
		if n == "write" {
			continue
		}
		v := def
		tr, named := t[n]
		if named && tr.Uncond != nil {
			v = *tr.Uncond
		}
		if named && tr.Uncond == nil {
			if cm == nil {
				continue // Audit leaves argument rules alone
			}
			// tr falls through to def (treatments normalized it).
			allowing := !slices.ContainsFunc(tr.Rules, func(r specs.LinuxSyscall) bool { return denies(verdict{r.Action, r.ErrnoRet}) })
			if allowing && denies(def) {
				if rules, ok := complement(tr.Rules); ok {
					for _, args := range rules {
						notifyRules = append(notifyRules, specs.LinuxSyscall{Names: []string{n}, Action: specs.ActNotify, Args: args})
					}
					answer(n, def)
					continue
				}
			}
			if !allowing || denies(def) {
				// Routed whole: the agent evaluates the rules.
				if cm.Rules == nil {
					cm.Rules = map[string][]specs.LinuxSyscall{}
				}
				cm.Rules[n] = tr.Rules
				answer(n, tr.strictest(def))
				routed = append(routed, n)
			}
			continue
		}
		if cm == nil && v.Action != specs.ActErrno || cm != nil && !denies(v) {
			continue
		}
		if cm == nil {
			if e := errnoOrEPERM(v.Errno); e != meta.Errno {
				if meta.Errnos == nil {
					meta.Errnos = map[string]uint{}
				}
				meta.Errnos[n] = e
			}
		} else {
			answer(n, v)
		}
		routed = append(routed, n)
	}
	if len(routed) == 0 && len(notifyRules) == 0 {
		return sc, nil
	}
	meta.ENOSYSAbove = map[specs.Arch]int{}
	named := map[string]bool{}
	for _, s := range sc.Syscalls {
		for _, n := range s.Names {
			named[n] = true
		}
	}
	for _, a := range archesOrNative(sc.Architectures) {
		arch, ok := specArch(a)
		if !ok || !hasTable(arch) {
			continue
		}
		highest := -1
		for s := range arch.Syscalls() { // by number
			if named[s.Name] {
				highest = int(s.Nr)
			}
		}
		meta.ENOSYSAbove[a] = highest
	}
	var md []byte
	var err error
	if cm != nil {
		md, err = json.Marshal(complainDoc{meta, cm})
	} else {
		md, err = json.Marshal(meta)
	}
	if err != nil {
		return nil, err
	}
	out := *sc
	out.ListenerPath, out.ListenerMetadata = listener, string(md)
	out.Syscalls = nil
	isRouted := make(map[string]bool, len(routed))
	for _, n := range routed {
		isRouted[n] = true
	}
	for _, s := range sc.Syscalls {
		// Routed names leave the rules that named them: Audit's are
		// unconditional errno rules; in complain mode, any rule (a
		// syscall routed whole takes its argument rules to the metadata).
		if cm != nil || len(s.Args) == 0 && s.Action == specs.ActErrno {
			var keep []string
			for _, n := range s.Names {
				if !isRouted[n] {
					keep = append(keep, n)
				}
			}
			if len(keep) == 0 {
				continue
			}
			s.Names = keep
		}
		out.Syscalls = append(out.Syscalls, s)
	}
	if len(routed) > 0 {
		out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{Names: routed, Action: specs.ActNotify})
	}
	out.Syscalls = append(out.Syscalls, notifyRules...)
	return &out, nil
}

// maxComplement bounds the rules a complement may take; past it the
// syscall is routed whole. Each rule costs the filter a few instructions per
// architecture, and a filter has at most 4096.
const maxComplement = 32

// complement returns argument conditions, one rule each, whose union is
// exactly the calls none of rules matches, as runc applies rules: the
// conditions of one rule all hold (AND), except that runc splits a rule
// naming one argument twice into one rule per condition (OR). ok is false
// where that can't be said in at most maxComplement rules of conditions on
// distinct arguments (runc would OR conditions on the same one), with values
// of 32 bits (what libseccomp compares on 32-bit architectures): a set of
// points spread over a wide range (Docker's personality) would take one
// masked rule per aligned block.
//
// Two forms are exact:
//   - one rule (Docker's clone): the calls where some condition fails; a
//     failed SCMP_CMP_MASKED_EQ is one differing bit of the mask, one rule
//     per bit;
//   - rules of one condition on one argument (Docker's socket): the gaps
//     between the values they allow, each a point (SCMP_CMP_EQ) or a ray
//     (SCMP_CMP_LE, SCMP_CMP_GE).
func complement(rules []specs.LinuxSyscall) ([][]specs.LinuxSeccompArg, bool) {
	var split [][]specs.LinuxSeccompArg // the rules as runc adds them
	for _, r := range rules {
		// A value above 32 bits is another condition on a 32-bit ABI,
		// where libseccomp compares the low 32 bits: the complement, exact
		// on 64 bits, could leave a call there both allowed and routed, or
		// neither. Routed whole, the agent judges it as the filter would.
		if slices.ContainsFunc(r.Args, func(a specs.LinuxSeccompArg) bool { return a.Value > math.MaxUint32 || a.ValueTwo > math.MaxUint32 }) {
			return nil, false
		}
		if !splitByRunc(r.Args) {
			split = append(split, r.Args)
			continue
		}
		for _, a := range r.Args {
			split = append(split, []specs.LinuxSeccompArg{a})
		}
	}
	var out [][]specs.LinuxSeccompArg
	add := func(a specs.LinuxSeccompArg) bool {
		out = append(out, []specs.LinuxSeccompArg{a})
		// libseccomp compares 32 bits on 32-bit architectures: a value
		// above would not be the same condition there.
		return len(out) <= maxComplement && a.Value <= math.MaxUint32 && a.ValueTwo <= math.MaxUint32
	}
	if len(split) == 1 {
		for _, a := range split[0] {
			switch a.Op {
			case specs.OpMaskedEqual:
				// (x & Value) == ValueTwo fails where a bit of the mask
				// differs from ValueTwo's.
				if a.ValueTwo&^a.Value != 0 {
					return nil, false // never holds: nothing is allowed
				}
				for b := uint64(1); b != 0; b <<= 1 {
					if a.Value&b != 0 && !add(specs.LinuxSeccompArg{Index: a.Index, Op: specs.OpMaskedEqual, Value: b, ValueTwo: b &^ a.ValueTwo}) {
						return nil, false
					}
				}
			case specs.OpEqualTo:
				if !add(specs.LinuxSeccompArg{Index: a.Index, Op: specs.OpNotEqual, Value: a.Value}) {
					return nil, false
				}
			default:
				iv, ok := intervals(a)
				if !ok {
					return nil, false
				}
				for _, g := range gaps(iv) {
					if !addGap(g, a.Index, add) {
						return nil, false
					}
				}
			}
		}
		return out, true
	}
	var allowed [][2]uint64
	for _, args := range split {
		if len(args) != 1 || args[0].Index != split[0][0].Index {
			return nil, false
		}
		iv, ok := intervals(args[0])
		if !ok {
			return nil, false
		}
		allowed = append(allowed, iv...)
	}
	for _, g := range gaps(allowed) {
		if !addGap(g, split[0][0].Index, add) {
			return nil, false
		}
	}
	return out, true
}

// intervals is the values a condition holds for, as closed intervals; ok is
// false for a masked comparison.
func intervals(a specs.LinuxSeccompArg) ([][2]uint64, bool) {
	v := a.Value
	switch a.Op {
	case specs.OpEqualTo:
		return [][2]uint64{{v, v}}, true
	case specs.OpNotEqual:
		var iv [][2]uint64
		if v > 0 {
			iv = append(iv, [2]uint64{0, v - 1})
		}
		if v < math.MaxUint64 {
			iv = append(iv, [2]uint64{v + 1, math.MaxUint64})
		}
		return iv, true
	case specs.OpLessThan:
		if v == 0 {
			return nil, true
		}
		return [][2]uint64{{0, v - 1}}, true
	case specs.OpLessEqual:
		return [][2]uint64{{0, v}}, true
	case specs.OpGreaterThan:
		if v == math.MaxUint64 {
			return nil, true
		}
		return [][2]uint64{{v + 1, math.MaxUint64}}, true
	case specs.OpGreaterEqual:
		return [][2]uint64{{v, math.MaxUint64}}, true
	}
	return nil, false
}

// gaps is the complement of the union of closed intervals.
func gaps(iv [][2]uint64) [][2]uint64 {
	sort.Slice(iv, func(i, j int) bool { return iv[i][0] < iv[j][0] })
	var out [][2]uint64
	next, done := uint64(0), false // the lowest value not yet covered
	for _, r := range iv {
		if done || r[1] < next {
			continue
		}
		if r[0] > next {
			out = append(out, [2]uint64{next, r[0] - 1})
		}
		if r[1] == math.MaxUint64 {
			done = true
		} else if r[1]+1 > next {
			next = r[1] + 1
		}
	}
	if !done {
		out = append(out, [2]uint64{next, math.MaxUint64})
	}
	return out
}

// maxPoints is the widest gap said point by point.
const maxPoints = 8

// addGap adds the conditions for the values lo..hi of argument index: a
// ray is one condition, a short gap one per value.
func addGap(g [2]uint64, index uint, add func(specs.LinuxSeccompArg) bool) bool {
	lo, hi := g[0], g[1]
	switch {
	case lo == 0 && hi == math.MaxUint64:
		return false // every value: the rule allows nothing (routed whole)
	case lo == hi:
		return add(specs.LinuxSeccompArg{Index: index, Op: specs.OpEqualTo, Value: lo})
	case lo == 0:
		return add(specs.LinuxSeccompArg{Index: index, Op: specs.OpLessEqual, Value: hi})
	case hi == math.MaxUint64:
		return add(specs.LinuxSeccompArg{Index: index, Op: specs.OpGreaterEqual, Value: lo})
	case hi-lo < maxPoints:
		for v := lo; ; v++ {
			if !add(specs.LinuxSeccompArg{Index: index, Op: specs.OpEqualTo, Value: v}) {
				return false
			}
			if v == hi {
				return true
			}
		}
	}
	return false
}

// argOpOf is ArgCond's name of each OCI operator.
var argOpOf = map[specs.LinuxSeccompOperator]string{
	specs.OpEqualTo: "eq", specs.OpNotEqual: "ne", specs.OpLessThan: "lt", specs.OpLessEqual: "le",
	specs.OpGreaterThan: "gt", specs.OpGreaterEqual: "ge", specs.OpMaskedEqual: "mask",
}

// splitByRunc reports whether runc adds args as one rule per condition (any
// holds) rather than one rule (all hold): where they name an argument twice.
func splitByRunc(args []specs.LinuxSeccompArg) bool {
	seen := map[uint]bool{}
	for _, a := range args {
		if seen[a.Index] {
			return true
		}
		seen[a.Index] = true
	}
	return false
}

// Holds reports whether rule r matches a call with args as runc applies
// it (see complement): the one evaluation of a profile's argument rules,
// which the agent runs for syscalls routed whole.
func Holds(r specs.LinuxSyscall, args [6]uint64) bool { return holds(r, args, math.MaxUint64) }

// holds is Holds on the bits of w alone, of the arguments and of the
// rule's values: libseccomp compares the low 32 bits on a 32-bit ABI.
func holds(r specs.LinuxSyscall, args [6]uint64, w uint64) bool {
	dup := splitByRunc(r.Args)
	for _, a := range r.Args {
		if a.Index > 5 {
			return false
		}
		c := ArgCond{Index: a.Index, Op: argOpOf[a.Op], Value: a.Value & w}
		if a.Op == specs.OpMaskedEqual {
			c.Mask, c.Value = a.Value&w, a.ValueTwo&w
		}
		h := c.Holds(args[a.Index] & w)
		if dup && h {
			return true // runc split the rule: any condition
		}
		if !dup && !h {
			return false
		}
	}
	return !dup
}

// Would is what the profile gives a call with args of syscall name, routed
// whole (in Rules): the action of the strictest rule that matches, or the
// default where none does; allowed is whether that lets the call run.
// bits32 is whether the call is of a 32-bit ABI (x86, x32, arm: see
// unotify.Data.Bits32), whose filter compares the low 32 bits of each
// argument: so does Would there, as a call the filter would deny must not
// pass for allowed by its upper bits.
func (cm *ComplainMeta) Would(name string, args [6]uint64, bits32 bool) (action specs.LinuxSeccompAction, errno uint, allowed bool) {
	w := uint64(math.MaxUint64)
	if bits32 {
		w = math.MaxUint32
	}
	v := verdict{cm.DefaultAction, cm.DefaultErrno}
	matched := false
	for _, r := range cm.Rules[name] {
		if holds(r, args, w) {
			w := verdict{r.Action, r.ErrnoRet}
			if matched {
				w = stricter(v, w)
			}
			v, matched = w, true
		}
	}
	return v.Action, errnoOrEPERM(v.Errno), !denies(v)
}

func (cm *ComplainMeta) actions() map[string]specs.LinuxSeccompAction {
	if cm == nil {
		return nil
	}
	return cm.Actions
}

func (cm *ComplainMeta) rules() map[string][]specs.LinuxSyscall {
	if cm == nil {
		return nil
	}
	return cm.Rules
}
