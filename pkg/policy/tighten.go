package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrNoCommonArch is returned when two profiles share no architecture, so
// their intersection would refuse every syscall.
var ErrNoCommonArch = errors.New("profiles share no architecture")

var actionRank = map[specs.LinuxSeccompAction]int{
	specs.ActAllow: 0, specs.ActLog: 1, specs.ActNotify: 2, specs.ActTrace: 2,
	specs.ActErrno: 3, specs.ActTrap: 4, specs.ActKill: 5, specs.ActKillThread: 5,
	specs.ActKillProcess: 6,
}

type verdict struct {
	Action specs.LinuxSeccompAction
	Errno  *uint `json:",omitempty"`
}

// equal compares verdicts as runc applies them: ERRNO without a value is
// EPERM.
func (v verdict) equal(w verdict) bool {
	errno := func(v verdict) uint {
		if v.Errno != nil {
			return *v.Errno
		}
		return 1
	}
	return v.Action == w.Action && errno(v) == errno(w)
}

// stricter prefers a on a tie, so the base profile's errno survives.
func stricter(a, b verdict) verdict {
	if actionRank[b.Action] > actionRank[a.Action] {
		return b
	}
	return a
}

// treatment is how a profile handles one syscall: one verdict for every
// call, or rules on its arguments that fall through to the default.
type treatment struct {
	Uncond *verdict             `json:",omitempty"`
	Rules  []specs.LinuxSyscall `json:",omitempty"`
}

func (t treatment) allow() bool { return t.Uncond != nil && t.Uncond.Action == specs.ActAllow }

func (t treatment) allAllow() bool {
	return t.Uncond == nil && !slices.ContainsFunc(t.Rules, func(r specs.LinuxSyscall) bool { return r.Action != specs.ActAllow })
}

// strictest is the strictest verdict t can give, fall-through included.
func (t treatment) strictest(v verdict) verdict {
	if t.Uncond != nil {
		return stricter(v, *t.Uncond)
	}
	for _, r := range t.Rules {
		v = stricter(v, verdict{r.Action, r.ErrnoRet})
	}
	return v
}

// normalize turns rules that all say what the default says into the default.
func (t treatment) normalize(def verdict) treatment {
	if t.Uncond == nil && !slices.ContainsFunc(t.Rules, func(r specs.LinuxSyscall) bool {
		return !verdict{r.Action, r.ErrnoRet}.equal(def)
	}) {
		return treatment{Uncond: &def}
	}
	return t
}

func treatments(sc *specs.LinuxSeccomp) map[string]treatment {
	m := map[string]treatment{}
	for _, s := range sc.Syscalls {
		for _, n := range s.Names {
			t := m[n]
			if len(s.Args) == 0 {
				v := verdict{s.Action, s.ErrnoRet}
				if t.Uncond != nil {
					v = stricter(*t.Uncond, v)
				}
				t.Uncond = &v
			} else {
				r := s
				r.Names = []string{n}
				t.Rules = append(t.Rules, r)
			}
			m[n] = t
		}
	}
	def := verdict{sc.DefaultAction, sc.DefaultErrnoRet}
	for n, t := range m {
		switch {
		case t.Uncond != nil && len(t.Rules) > 0:
			// libseccomp gives no clear answer for a syscall with both an
			// unconditional rule and argument rules: take the strictest.
			v := treatment{Rules: t.Rules}.strictest(*t.Uncond)
			m[n] = treatment{Uncond: &v}
		default:
			m[n] = t.normalize(def)
		}
	}
	return m
}

// implies reports whether every call a's rules allow, b's allow too: each of
// a's rules has all the conditions of one of b's.
func implies(a, b treatment) bool {
	for _, ra := range a.Rules {
		if !slices.ContainsFunc(b.Rules, func(rb specs.LinuxSyscall) bool {
			for _, arg := range rb.Args {
				if !slices.Contains(ra.Args, arg) {
					return false
				}
			}
			return true
		}) {
			return false
		}
	}
	return true
}

// Tighten returns a profile at least as strict as base and ours for every
// syscall and argument: base is the engine's profile, which ours may only
// tighten. Where the two have different argument rules for one syscall that
// can't be intersected exactly, the syscall gets the stricter of their
// verdicts outright: that fails closed. Tighten(Tighten(b, o), o) equals
// Tighten(b, o), so rewriting a spec twice changes nothing.
func Tighten(base, ours *specs.LinuxSeccomp) (*specs.LinuxSeccomp, error) {
	defE := verdict{base.DefaultAction, base.DefaultErrnoRet}
	defP := verdict{ours.DefaultAction, ours.DefaultErrnoRet}
	def := stricter(defE, defP)
	tE, tP := treatments(base), treatments(ours)

	out := &specs.LinuxSeccomp{
		DefaultAction:    def.Action,
		DefaultErrnoRet:  def.Errno,
		ListenerPath:     base.ListenerPath,
		ListenerMetadata: base.ListenerMetadata,
	}
	if out.ListenerPath == "" {
		out.ListenerPath, out.ListenerMetadata = ours.ListenerPath, ours.ListenerMetadata
	}
	for _, a := range archesOrNative(base.Architectures) {
		if slices.Contains(archesOrNative(ours.Architectures), a) {
			out.Architectures = append(out.Architectures, a)
		}
	}
	if len(out.Architectures) == 0 {
		return nil, fmt.Errorf("%w: %v and %v", ErrNoCommonArch, base.Architectures, ours.Architectures)
	}
	if len(base.Architectures) == 0 && len(ours.Architectures) == 0 {
		out.Architectures = nil
	}
	for _, f := range slices.Concat(base.Flags, ours.Flags) {
		// Speculation mitigations stay on unless both profiles turn them off.
		if f == specs.LinuxSeccompFlagSpecAllow && !(slices.Contains(base.Flags, f) && slices.Contains(ours.Flags, f)) {
			continue
		}
		if !slices.Contains(out.Flags, f) {
			out.Flags = append(out.Flags, f)
		}
	}

	names := map[string]bool{}
	for n := range tE {
		names[n] = true
	}
	for n := range tP {
		names[n] = true
	}
	groups := map[string][]string{}
	for n := range names {
		e, ok := tE[n]
		if !ok {
			e = treatment{Uncond: &defE}
		}
		p, ok := tP[n]
		if !ok {
			p = treatment{Uncond: &defP}
		}
		var r treatment
		switch {
		case e.Uncond != nil && p.Uncond != nil:
			v := stricter(*e.Uncond, *p.Uncond)
			r = treatment{Uncond: &v}
		case p.allow():
			r = e
		case e.allow():
			r = p
		case reflect.DeepEqual(e.Rules, p.Rules):
			r = e
		case e.allAllow() && p.allAllow() && implies(e, p):
			r = e
		case e.allAllow() && p.allAllow() && implies(p, e):
			r = p
		default:
			v := p.strictest(e.strictest(def))
			r = treatment{Uncond: &v}
		}
		if r = r.normalize(def); r.Uncond != nil && r.Uncond.equal(def) {
			continue // the default says it already
		}
		key, _ := json.Marshal(r)
		groups[string(key)] = append(groups[string(key)], n)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		sort.Strings(groups[k])
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var r treatment
		_ = json.Unmarshal([]byte(k), &r)
		if r.Uncond != nil {
			out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{Names: groups[k], Action: r.Uncond.Action, ErrnoRet: r.Uncond.Errno})
			continue
		}
		for _, rule := range r.Rules {
			rule.Names = groups[k]
			out.Syscalls = append(out.Syscalls, rule)
		}
	}
	return out, nil
}

func archesOrNative(a []specs.Arch) []specs.Arch {
	if len(a) == 0 {
		return []specs.Arch{nativeArch()}
	}
	return a
}
