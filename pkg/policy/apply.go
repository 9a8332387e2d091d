package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/internal/kernelfeat"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
)

// SpecOpt changes a spec, in the manner of containerd's oci.SpecOpts.
type SpecOpt func(*specs.Spec) error

// WithSeccomp sets the spec's seccomp profile; nil removes it.
func WithSeccomp(sc *specs.LinuxSeccomp) SpecOpt {
	return func(s *specs.Spec) error {
		if s.Linux == nil {
			if sc == nil {
				return nil
			}
			s.Linux = &specs.Linux{}
		}
		s.Linux.Seccomp = sc
		return nil
	}
}

// WithTightened sets the spec's profile to its current one tightened by ours.
func WithTightened(ours *specs.LinuxSeccomp) SpecOpt {
	return func(s *specs.Spec) error {
		t, err := Tighten(s.Linux.Seccomp, ours)
		if err != nil {
			return err
		}
		s.Linux.Seccomp = t
		return nil
	}
}

// What Apply did, as Result.Action.
const (
	ActionInjected   = "injected"   // the container had no profile and got ours
	ActionKept       = "kept"       // the engine's profile stays
	ActionReplaced   = "replaced"   // the engine's profile was replaced by ours
	ActionTightened  = "tightened"  // the engine's profile, tightened by ours
	ActionUnconfined = "unconfined" // no profile, as policy allows
)

// Result says what Apply chose and did.
type Result struct {
	Choice
	Action   string
	Audit    string // "audited", why not, or "" when the container has no filter
	Warnings []string

	// EngineKept: the engine's own profile stays, so the decision's
	// Profile is not what applies (InForce names it).
	EngineKept bool
}

// AuditDegraded starts Result.Audit where the policy asked for the audit
// but the agent was unreachable and audit.unreachable = "degrade": the
// container runs with its profile, unaudited for life.
const AuditDegraded = "degraded: "

// Degraded says whether the container starts without the audit the policy
// asked for.
func (r *Result) Degraded() bool { return strings.HasPrefix(r.Audit, AuditDegraded) }

// ContainerOf is what rules see of a spec; id may be empty.
func ContainerOf(spec *specs.Spec, id string) Container {
	c := Container{ID: id, Annotations: spec.Annotations}
	if spec.Process != nil {
		c.Args, c.Env = spec.Process.Args, spec.Process.Env
	}
	return c
}

// Apply sets the spec's seccomp profile as the policy decides for the
// container id (empty where unknown). It changes nothing but
// spec.Linux.Seccomp, and applying it again to its own output changes nothing.
// A profile an earlier pass routed to the node's agent (Audit) is taken back
// to the plain one first (Unaudit): the routing is how that pass delivered
// the profile, not the profile, and tightening it would rank NOTIFY below
// the errnos it stands for. Auditing the result again is the caller's.
func (c *Config) Apply(spec *specs.Spec, id string) (*Result, error) {
	d, err := c.Choose(ContainerOf(spec, id))
	if err != nil {
		return nil, err
	}
	res := &Result{Choice: d}
	var existing *specs.LinuxSeccomp
	if spec.Linux != nil {
		var ours bool
		if existing, ours = Unaudit(spec.Linux.Seccomp, c.Audit.Socket); ours {
			spec.Linux.Seccomp = existing
		}
	}
	if existing != nil && d.Existing == ExistingKeep {
		res.Action, res.EngineKept = ActionKept, true
		return res, nil
	}
	ours, warnings, err := c.Resolve(d, spec)
	if err != nil {
		return nil, err
	}
	res.Warnings = warnings
	var opt SpecOpt
	switch {
	case ours == nil && (existing == nil || d.Existing == ExistingReplace):
		res.Action, opt = ActionUnconfined, WithSeccomp(nil)
	case ours == nil:
		res.Action, res.EngineKept = ActionKept, true // nothing tightens by unconfined
		return res, nil
	case existing == nil:
		res.Action, opt = ActionInjected, WithSeccomp(ours)
	case d.Existing == ExistingTighten && SameProtection(existing, ours, ""):
		// Ours, as an earlier run injected it: tightening it by itself would
		// only regroup its rules, and change the spec on every run.
		res.Action = ActionKept
		return res, nil
	case d.Existing == ExistingReplace:
		res.Action, opt = ActionReplaced, WithSeccomp(ours)
	default:
		res.Action, opt = ActionTightened, WithTightened(ours)
	}
	if err := opt(spec); err != nil {
		return nil, fmt.Errorf("rule %q, profile %q: %w", d.Rule, d.Profile, err)
	}
	return res, nil
}

// Resolve loads the decision's profile, resolves it for the spec, applies the
// architecture choice and validates the result. It returns nil for
// unconfined.
func (c *Config) Resolve(d Choice, spec *specs.Spec) (*specs.LinuxSeccomp, []string, error) {
	if c.Profiles.CacheDir != "" && ValidName(d.Profile) {
		if sc, warnings, ok, err := c.resolveCached(d, spec); ok {
			return sc, warnings, err
		}
	}
	p, err := LoadProfile(c.Profiles.Dir, d.Profile)
	if err != nil {
		return nil, nil, fmt.Errorf("rule %q: %w", d.Rule, err)
	}
	return c.resolveProfile(p, d, spec)
}

// resolveCached is Resolve through profiles.cache_dir (cache.go). ok is
// false where the cache does not apply: a built-in profile, an error
// opening the file (Resolve reports it), a cache not root's alone (said in
// a warning, as the work is still done without it).
func (c *Config) resolveCached(d Choice, spec *specs.Spec) (sc *specs.LinuxSeccomp, warnings []string, ok bool, err error) {
	pf, err := openProfile(c.Profiles.Dir, d.Profile)
	if err != nil || pf == nil {
		return nil, nil, false, nil
	}
	defer pf.f.Close()
	dir := c.Profiles.CacheDir
	if os.Geteuid() != 0 {
		return nil, nil, false, nil // the cache is root's; see trustedDir
	}
	key, err := cacheKey(pf, d, spec)
	if err != nil {
		return nil, nil, false, nil
	}
	if terr := trustedDir(dir); terr != nil {
		p, err := LoadProfile(c.Profiles.Dir, d.Profile)
		if err != nil {
			return nil, nil, true, fmt.Errorf("rule %q: %w", d.Rule, err)
		}
		sc, warnings, err = c.resolveProfile(p, d, spec)
		return sc, append(warnings, fmt.Sprintf("profiles.cache_dir %s not used: %v", dir, terr)), true, err
	}
	if e, hit := cacheGet(dir, key); hit {
		return e.Seccomp, e.Warnings, true, nil
	}
	data, same, err := pf.read()
	if err != nil {
		return nil, nil, false, nil
	}
	p, err := ParseProfile(d.Profile, pf.path, data)
	if err != nil {
		return nil, nil, true, fmt.Errorf("rule %q: %w", d.Rule, err)
	}
	if sc, warnings, err = c.resolveProfile(p, d, spec); err == nil && same {
		// Best effort: a failure only costs the next create this work.
		_ = cachePut(dir, key, &cacheEntry{Seccomp: sc, Warnings: warnings})
	}
	return sc, warnings, true, err
}

// resolveProfile is Resolve's work once the profile is loaded.
func (c *Config) resolveProfile(p *Profile, d Choice, spec *specs.Spec) (*specs.LinuxSeccomp, []string, error) {
	if p.Unconfined() {
		if !d.AllowUnconfined {
			return nil, nil, fmt.Errorf("rule %q: profile %q: %w", d.Rule, d.Profile, ErrNotAllowed)
		}
		return nil, nil, nil
	}
	sc, err := p.Resolve(spec)
	if err != nil {
		return nil, nil, err
	}
	switch a := d.Architectures; {
	case len(a) == 0 || a[0] == ArchProfile:
	case a[0] == ArchNative:
		sc.Architectures = []specs.Arch{nativeArch()}
	case a[0] == ArchAuto:
		sc.Architectures = c.autoArches()
	default:
		sc.Architectures = make([]specs.Arch, len(a))
		for i, s := range a {
			sc.Architectures[i] = specs.Arch(s)
		}
	}
	if p.Source == sourceBuiltin {
		// Built-in profiles are code: TestBuiltinsValidate checks them with
		// every capability they depend on and every architecture choice,
		// and `seccomp-shim check` against the syscall table. Checking
		// them again cost every container start a tenth of a millisecond.
		return sc, nil, nil
	}
	warnings, err := Validate(p, sc)
	return sc, warnings, err
}

// nativeArch is the spec name of the architecture this binary runs on, which
// is the host's: runc and the shim are built for it.
func nativeArch() specs.Arch {
	a, _ := unotify.NativeArch()
	return a.Spec
}

// autoArches is native alone where the kernel runs no 32-bit programs, and
// native with the companions Docker's default profile lists for it (x86 and
// x32 on x86_64) where it does or can't tell: a filter without them kills a
// 32-bit process, so leaving them out never lets a call through.
func (c *Config) autoArches() []specs.Arch {
	native := nativeArch()
	on := c.Compat32
	if on == nil {
		on = func() bool { return !errors.Is(kernelfeat.IA32Cached(c.RunDir), kernelfeat.ErrNotSupported) }
	}
	if !on() {
		return []specs.Arch{native}
	}
	for _, m := range mobyseccomp.DefaultProfile().ArchMap {
		if m.Arch == native {
			return append([]specs.Arch{native}, m.SubArches...)
		}
	}
	return []specs.Arch{native}
}

func equalJSON(a, b any) bool {
	x, errA := json.Marshal(a)
	y, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(x, y)
}
