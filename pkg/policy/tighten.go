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

// fallingTo is t, whose calls no rule matches get fall, in a profile whose
// default is def. Where the two differ, a rule on the one condition of t's
// one rule, inverted, says fall; where that can't be said exactly (several
// rules or conditions, a masked comparison), t falls through to def, the
// stricter: that fails closed, as Tighten does for rules it can't intersect.
func (t treatment) fallingTo(fall, def verdict) treatment {
	if fall.equal(def) || len(t.Rules) != 1 || len(t.Rules[0].Args) != 1 {
		return t
	}
	arg := t.Rules[0].Args[0]
	inv, ok := map[specs.LinuxSeccompOperator]specs.LinuxSeccompOperator{
		specs.OpEqualTo: specs.OpNotEqual, specs.OpNotEqual: specs.OpEqualTo,
		specs.OpLessThan: specs.OpGreaterEqual, specs.OpGreaterEqual: specs.OpLessThan,
		specs.OpLessEqual: specs.OpGreaterThan, specs.OpGreaterThan: specs.OpLessEqual,
	}[arg.Op]
	if !ok {
		return t
	}
	arg.Op = inv
	rest := specs.LinuxSyscall{Names: t.Rules[0].Names, Action: fall.Action, ErrnoRet: fall.Errno, Args: []specs.LinuxSeccompArg{arg}}
	return treatment{Rules: []specs.LinuxSyscall{t.Rules[0], rest}}
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
// Tighten(b, o), so rewriting a spec twice changes nothing. base must be
// plain: Apply takes our audit routing out of it first (Unaudit), as
// NOTIFY ranks below the ERRNO it stands for.
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
		// Each side's rules as they read under the output's default.
		ef, pf := e.fallingTo(defE, def), p.fallingTo(defP, def)
		var r treatment
		switch {
		case e.Uncond != nil && p.Uncond != nil:
			v := stricter(*e.Uncond, *p.Uncond)
			r = treatment{Uncond: &v}
		case p.allow():
			r = ef
		case e.allow():
			r = pf
		case reflect.DeepEqual(e.Rules, p.Rules):
			r = e
		case reflect.DeepEqual(ef.Rules, pf.Rules):
			r = ef // an earlier Tighten's output, tightened by ours again
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

// Unaudit takes our audit routing back out of sc: the routing Audit adds
// when listener is the node agent's socket and the metadata is ours. It
// returns the plain profile the agent answers as (each routed syscall denied
// with the errno the metadata gives it, as replay.Meta.Answer does) and
// true; or sc itself and false where sc is not routed to us. A listener
// anyone else set stays part of the profile: what answers there is not ours
// to vouch for.
func Unaudit(sc *specs.LinuxSeccomp, listener string) (*specs.LinuxSeccomp, bool) {
	if sc == nil || listener == "" || sc.ListenerPath != listener {
		return sc, false
	}
	meta, err := ParseAuditMeta(sc.ListenerMetadata)
	if err != nil {
		return sc, false
	}
	cm, _ := ParseComplainMeta(sc.ListenerMetadata) // complain mode's, nil for Audit's
	answer := func(n string) verdict {
		if a, ok := cm.actions()[n]; ok {
			return verdict{Action: a}
		}
		e := meta.Errno
		if x, ok := meta.Errnos[n]; ok {
			e = x
		}
		return verdict{specs.ActErrno, &e}
	}
	out := *sc
	out.ListenerPath, out.ListenerMetadata, out.Syscalls = "", "", nil
	named := map[string]bool{} // by a rule that stays
	for _, s := range sc.Syscalls {
		if s.Action != specs.ActNotify {
			out.Syscalls = append(out.Syscalls, s)
			for _, n := range s.Names {
				named[n] = true
			}
		}
	}
	def := verdict{sc.DefaultAction, sc.DefaultErrnoRet}
	var groups []int // indexes in out.Syscalls of the unconditional rules made here
	for _, s := range sc.Syscalls {
		if s.Action != specs.ActNotify {
			continue
		}
		for _, n := range s.Names {
			v := answer(n)
			if rules, ok := cm.rules()[n]; ok {
				// Complain mode routed it whole; its rules are back once.
				if !named[n] {
					out.Syscalls = append(out.Syscalls, rules...)
					named[n] = true
				}
				continue
			}
			if len(s.Args) > 0 {
				if cm != nil && v.equal(def) {
					continue // complain mode's complement: the default says it
				}
				r := s
				r.Names, r.Action, r.ErrnoRet = []string{n}, v.Action, v.Errno
				out.Syscalls = append(out.Syscalls, r)
				continue
			}
			// Where the default says it, leaving the name out keeps runc's
			// ENOSYS for syscalls newer than the profile as it was.
			if v.equal(def) && !named[n] {
				continue
			}
			i := slices.IndexFunc(groups, func(i int) bool {
				return verdict{out.Syscalls[i].Action, out.Syscalls[i].ErrnoRet}.equal(v)
			})
			if i < 0 {
				groups = append(groups, len(out.Syscalls))
				out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{Action: v.Action, ErrnoRet: v.Errno})
				i = len(groups) - 1
			}
			out.Syscalls[groups[i]].Names = append(out.Syscalls[groups[i]].Names, n)
		}
	}
	return &out, true
}

// SameProtection reports whether a and b answer every syscall alike on the
// same architectures with the same flags, once our audit routing to listener
// is taken out of each (Unaudit): how a profile is grouped, and whether its
// denials reach the agent, is not what it protects.
func SameProtection(a, b *specs.LinuxSeccomp, listener string) bool {
	a, _ = Unaudit(a, listener)
	b, _ = Unaudit(b, listener)
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return equalJSON(protectionOf(a), protectionOf(b))
}

// protection is what SameProtection compares, in one canonical form.
type protection struct {
	Default        verdict
	Arches, Flags  []string
	Listener, Meta string
	Syscalls       map[string]treatment
}

func protectionOf(sc *specs.LinuxSeccomp) protection {
	canon := func(v verdict) verdict {
		if v.Action != specs.ActErrno {
			return verdict{Action: v.Action}
		}
		e := errnoOrEPERM(v.Errno)
		return verdict{v.Action, &e}
	}
	p := protection{Default: canon(verdict{sc.DefaultAction, sc.DefaultErrnoRet}), Listener: sc.ListenerPath, Meta: sc.ListenerMetadata, Syscalls: map[string]treatment{}}
	for _, a := range archesOrNative(sc.Architectures) {
		p.Arches = append(p.Arches, string(a))
	}
	for _, f := range sc.Flags {
		p.Flags = append(p.Flags, string(f))
	}
	sort.Strings(p.Arches)
	sort.Strings(p.Flags)
	p.Arches, p.Flags = slices.Compact(p.Arches), slices.Compact(p.Flags)
	for n, t := range treatments(sc) {
		if t.Uncond != nil {
			v := canon(*t.Uncond)
			if v.equal(p.Default) {
				continue
			}
			t.Uncond = &v
		}
		for i, r := range t.Rules {
			v := canon(verdict{r.Action, r.ErrnoRet})
			t.Rules[i].Action, t.Rules[i].ErrnoRet = v.Action, v.Errno
		}
		p.Syscalls[n] = t
	}
	return p
}
