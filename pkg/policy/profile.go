package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/internal/specfile"
)

// Names of the built-in profiles.
const (
	ProfileDefault    = "default"
	ProfileStrict     = "strict"
	ProfileUnconfined = "unconfined"
)

const sourceBuiltin = "built-in"

// ErrUnknownProfile is returned for a profile name that is neither built in
// nor a file in the profiles directory.
var ErrUnknownProfile = errors.New("unknown profile")

// profileNameRule is what ValidName accepts, for error messages.
const profileNameRule = "1-128 of [A-Za-z0-9._-], not starting with . _ or -"

// Profile is a seccomp profile in Docker's JSON format. The JSON is kept, not
// the decoded struct, because moby's resolver mutates what it is given.
type Profile struct {
	Name   string
	Source string // the file it was read from, or sourceBuiltin
	JSON   []byte // nil for unconfined and for Docker's default

	// dockerDefault marks the built-in default, which moby builds in code:
	// resolving it needs no JSON round trip at each container start.
	dockerDefault bool
}

// Unconfined reports whether the profile means "no seccomp filter".
func (p *Profile) Unconfined() bool { return p.JSON == nil && !p.dockerDefault }

// Bytes returns the profile's JSON, nil for unconfined.
func (p *Profile) Bytes() []byte {
	if p.dockerDefault {
		b, _ := json.Marshal(mobyseccomp.DefaultProfile())
		return b
	}
	return p.JSON
}

// ValidName reports whether name may name a profile: names are usable as
// file names and never as paths, so an annotation can't point the shim at an
// arbitrary file. (Hand-written: a regexp costs every container start its
// compilation.)
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > 128 {
		return false
	}
	for i, c := range []byte(name) {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// ParseProfile decodes a profile strictly: unknown fields are an error, since
// a misspelt key would otherwise silently weaken the profile.
//
// Keys that repeat, or differ only in case, are an error too: the decoder
// would use the last, the reader the first.
func ParseProfile(name, source string, data []byte) (*Profile, error) {
	if err := specfile.CheckKeys(data); err != nil {
		return nil, fmt.Errorf("profile %q (%s): %w", name, source, err)
	}
	var p mobyseccomp.Seccomp
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("profile %q (%s): %w", name, source, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("profile %q (%s): trailing data after the JSON object", name, source)
	}
	if p.DefaultAction == "" {
		return nil, fmt.Errorf("profile %q (%s): defaultAction: missing", name, source)
	}
	return &Profile{Name: name, Source: source, JSON: data}, nil
}

// LoadProfile returns the named profile: a file <dir>/<name>.json wins over a
// built-in of the same name, so an operator can pin or override "default".
func LoadProfile(dir, name string) (*Profile, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("profile name %q: must be %s: %w", name, profileNameRule, ErrUnknownProfile)
	}
	pf, err := openProfile(dir, name)
	if err != nil {
		return nil, err
	}
	if pf != nil {
		defer pf.f.Close()
		data, _, err := pf.read()
		if err != nil {
			return nil, fmt.Errorf("profile %q: %w", name, err)
		}
		return ParseProfile(name, pf.path, data)
	}
	if p, ok := builtin(name); ok {
		return p, nil
	}
	where := "built-in profiles"
	if dir != "" {
		where = filepath.Join(dir, name+".json") + " or " + where
	}
	return nil, fmt.Errorf("profile %q: not in %s: %w", name, where, ErrUnknownProfile)
}

// Resolve turns the profile into the OCI form for this spec: includes and
// excludes are decided by the spec's capabilities, the host's architecture
// and kernel. It returns nil for unconfined.
func (p *Profile) Resolve(spec *specs.Spec) (*specs.LinuxSeccomp, error) {
	if p.Unconfined() {
		return nil, nil
	}
	// moby's resolver dereferences spec.Process.Capabilities unchecked.
	rs := specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}}
	if spec != nil && spec.Process != nil && spec.Process.Capabilities != nil {
		rs.Process.Capabilities = spec.Process.Capabilities
	}
	var sc *specs.LinuxSeccomp
	var err error
	if p.dockerDefault {
		sc, err = mobyseccomp.GetDefaultProfile(&rs)
	} else {
		sc, err = mobyseccomp.LoadProfile(string(p.JSON), &rs)
	}
	if err != nil {
		return nil, fmt.Errorf("profile %q (%s): %w", p.Name, p.Source, err)
	}
	if sc == nil {
		return nil, fmt.Errorf("profile %q (%s): no defaultAction and no syscalls", p.Name, p.Source)
	}
	return sc, nil
}

// Origin is where a resolved rule came from in the profile's source.
type Origin struct {
	Index       int  // position in the source's "syscalls"; -1 if unknown
	Conditional bool // it has includes or excludes
}

// Origins maps the rules of sc, resolved from p, back to the source: the
// resolver only drops rules and keeps their order, so a greedy walk finds
// each one. It is only needed to report problems, so it is not done at every
// start.
func (p *Profile) Origins(sc *specs.LinuxSeccomp) []Origin {
	out := make([]Origin, len(sc.Syscalls))
	var src mobyseccomp.Seccomp
	if data := p.Bytes(); data == nil || json.Unmarshal(data, &src) != nil {
		for i := range out {
			out[i] = Origin{Index: i}
		}
		return out
	}
	j := 0
	for i := range sc.Syscalls {
		out[i] = Origin{Index: -1}
		for ; j < len(src.Syscalls); j++ {
			s := src.Syscalls[j]
			ls := s.LinuxSyscall
			if s.Name != "" {
				ls.Names = []string{s.Name}
			}
			if reflect.DeepEqual(ls, sc.Syscalls[i]) {
				out[i] = Origin{Index: j, Conditional: s.Includes != nil || s.Excludes != nil}
				j++
				break
			}
		}
	}
	return out
}

// CheckProfiles makes sure every profile a rule names exists, so a typo in
// a rule that rarely decides fails every create at once instead of the one
// container it would have hit (with existing = "keep", perhaps never).
func (c *Config) CheckProfiles() error {
	var errs []error
	for i, r := range c.Rules {
		for _, n := range append([]string{r.Profile}, r.AllowedProfiles...) {
			if slices.Contains(BuiltinNames(), n) {
				continue // a file may override it, but need not
			}
			if _, err := os.Stat(filepath.Join(c.Profiles.Dir, n+".json")); err != nil {
				errs = append(errs, fmt.Errorf("rule[%d] (%s): profile %q: no %s and no built-in of that name: %w", i, r.Name, n, filepath.Join(c.Profiles.Dir, n+".json"), ErrUnknownProfile))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("config %s: %w", c.Source, errors.Join(errs...))
	}
	return nil
}
