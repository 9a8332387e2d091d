package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// AnnotationProfile lets a container ask for one of the profiles its rule
// allows. It names a profile, never a file.
const AnnotationProfile = "seccomp-shim.io/profile"

// ErrNotAllowed is returned when a container asks for a profile its rule
// does not allow.
var ErrNotAllowed = errors.New("not allowed by policy")

// The annotations CRI implementations set; containerd's first, CRI-O's second.
var (
	annNamespace = []string{"io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace"}
	annPod       = []string{"io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"}
	annContainer = []string{"io.kubernetes.cri.container-name", "io.kubernetes.container.name"}
	annImage     = []string{"io.kubernetes.cri.image-name", "io.kubernetes.cri-o.ImageName"}
)

// Container is what rules can see of a container.
type Container struct {
	ID          string // empty where unknown, as in a precreate hook
	Annotations map[string]string
	Args, Env   []string
}

func (c Container) annotation(keys []string) (string, bool) {
	for _, k := range keys {
		if v, ok := c.Annotations[k]; ok {
			return v, true
		}
	}
	return "", false
}

// sandbox reports whether this is a pod's pause container.
func (c Container) sandbox() bool {
	return c.Annotations["io.kubernetes.cri.container-type"] == "sandbox" ||
		c.Annotations["io.kubernetes.cri-o.ContainerType"] == "sandbox"
}

// Labels returns what CRI annotations say of a container, "" where they
// say nothing: its Kubernetes namespace, pod, container name and image.
func Labels(annotations map[string]string) (namespace, pod, name, image string) {
	c := Container{Annotations: annotations}
	namespace, _ = c.annotation(annNamespace)
	pod, _ = c.annotation(annPod)
	name, _ = c.annotation(annContainer)
	image, _ = c.annotation(annImage)
	return
}

// Match selects containers. Every field that is set must match; a list
// matches if any of its patterns does. Patterns are globs where * matches any
// run of characters (slashes too) and ? any one character.
type Match struct {
	Annotations map[string]string `toml:"annotations"` // key: exact; value: glob
	Namespaces  []string          `toml:"namespaces"`
	Pods        []string          `toml:"pods"`
	Containers  []string          `toml:"containers"`
	Images      []string          `toml:"images"`
	IDs         []string          `toml:"ids"`
	Args        []string          `toml:"args"` // matched against the args joined by spaces
	Env         []string          `toml:"env"`  // matched against each NAME=value
}

func (m *Match) validate() error {
	for k := range m.Annotations {
		if k == "" {
			return errors.New("match.annotations: empty key")
		}
	}
	return nil
}

// Matches reports whether the container is selected.
func (m *Match) Matches(c Container) bool {
	for k, pat := range m.Annotations {
		v, ok := c.Annotations[k]
		if !ok || !Glob(pat, v) {
			return false
		}
	}
	fields := []struct {
		pats []string
		keys []string
	}{{m.Namespaces, annNamespace}, {m.Pods, annPod}, {m.Containers, annContainer}, {m.Images, annImage}}
	for _, f := range fields {
		if len(f.pats) == 0 {
			continue
		}
		v, ok := c.annotation(f.keys)
		if !ok || !anyGlob(f.pats, v) {
			return false
		}
	}
	if len(m.IDs) > 0 && (c.ID == "" || !anyGlob(m.IDs, c.ID)) {
		return false
	}
	if len(m.Args) > 0 && !anyGlob(m.Args, strings.Join(c.Args, " ")) {
		return false
	}
	if len(m.Env) > 0 && !slices.ContainsFunc(c.Env, func(e string) bool { return anyGlob(m.Env, e) }) {
		return false
	}
	return true
}

func anyGlob(pats []string, s string) bool {
	return slices.ContainsFunc(pats, func(p string) bool { return Glob(p, s) })
}

// Glob matches s against pattern, where * is any run and ? any one byte.
// It backtracks only to the last star, so it is linear in practice and never
// exponential on hostile annotations.
func Glob(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Decision is what the policy chose for one container.
type Decision struct {
	Rule            string
	Profile         string // the profile to inject
	Requested       bool   // chosen by the container's annotation
	Existing        string
	AllowUnconfined bool
	Architectures   []string
}

// Decide finds the first matching rule and applies the container's profile
// request, if it has one and the rule allows it.
func (c *Config) Decide(ctr Container) (Decision, error) {
	r := DefaultRule()
	r.Architectures = StringList{ArchProfile}
	for _, rule := range c.Rules {
		if rule.Match.Matches(ctr) {
			r = rule
			break
		}
	}
	d := Decision{
		Rule: r.Name, Profile: r.Profile, Existing: r.Existing,
		AllowUnconfined: r.AllowUnconfined, Architectures: r.Architectures,
	}
	want, ok := ctr.Annotations[AnnotationProfile]
	if !ok || want == r.Profile || ctr.sandbox() {
		// CRI copies a pod's annotations to its pause container too: a pod
		// asking for its containers' profile must not change the sandbox's.
		return d, nil
	}
	if !ValidName(want) {
		return d, fmt.Errorf("annotation %s=%q: not a profile name (a name, never a path): %w", AnnotationProfile, want, ErrNotAllowed)
	}
	if !slices.Contains(r.AllowedProfiles, want) || (want == ProfileUnconfined && !r.AllowUnconfined) {
		return d, fmt.Errorf("annotation %s=%q: rule %q allows only %q: %w", AnnotationProfile, want, r.Name, append([]string{r.Profile}, r.AllowedProfiles...), ErrNotAllowed)
	}
	d.Profile, d.Requested = want, true
	return d, nil
}
