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

// AnnotationComplain lets a container ask for complain mode ("true"), where
// its rule has allow_complain, or for enforcement ("false"), always.
const AnnotationComplain = "seccomp-shim.io/complain"

// ErrAnnotations is returned when the annotations of two CRI engines are
// both present and disagree about what the container is.
var ErrAnnotations = errors.New("conflicting CRI annotations")

// ErrNotAllowed is returned when a container asks for a profile its rule
// does not allow.
var ErrNotAllowed = errors.New("not allowed by policy")

// The annotations each CRI engine sets on the specs it makes (containerd:
// pkg/cri/annotations; CRI-O: pkg/annotations and the kubelet's labels it
// copies), in the order of the kube fields: container type, namespace, pod,
// container, image. Engines may also pass a pod's own annotations through
// (containerd's pod_annotations, CRI-O's allowed_annotations), so a key is
// only trusted when the spec is that engine's: one of its markers is there.
var engines = [...]struct {
	markers []string
	keys    [kubeFields]string
}{
	{[]string{"io.kubernetes.cri.container-type", "io.kubernetes.cri.sandbox-id"}, [kubeFields]string{
		"io.kubernetes.cri.container-type", "io.kubernetes.cri.sandbox-namespace", "io.kubernetes.cri.sandbox-name",
		"io.kubernetes.cri.container-name", "io.kubernetes.cri.image-name"}},
	{[]string{"io.kubernetes.cri-o.ContainerType", "io.kubernetes.cri-o.SandboxID"}, [kubeFields]string{
		"io.kubernetes.cri-o.ContainerType", "io.kubernetes.pod.namespace", "io.kubernetes.pod.name",
		"io.kubernetes.container.name", "io.kubernetes.cri-o.ImageName"}},
}

const (
	kubeType = iota
	kubeNamespace
	kubePod
	kubeContainer
	kubeImage
	kubeFields
)

// kube is what the engine that made a spec says of its container.
type kube struct {
	val [kubeFields]string
	set [kubeFields]bool // "" may be a value
}

// Container is what rules can see of a container.
type Container struct {
	ID          string // empty where unknown, as in a precreate hook
	Annotations map[string]string
	Args, Env   []string
}

// kube reads the CRI annotations of the engine whose markers the spec has.
// With no engine's, it says nothing: the annotations are a user's (docker
// run --annotation). With both engines' markers it can't tell which engine
// made the spec: their keys must agree, or it is an error.
func (c Container) kube() (kube, error) {
	var k kube
	var from [kubeFields]string // the key each field came from
	for _, e := range engines {
		if !slices.ContainsFunc(e.markers, func(m string) bool { _, ok := c.Annotations[m]; return ok }) {
			continue
		}
		for i, key := range e.keys {
			v, ok := c.Annotations[key]
			if !ok {
				continue
			}
			if k.set[i] && k.val[i] != v {
				return kube{}, fmt.Errorf("annotations %q=%q and %q=%q disagree: the spec has both containerd's and CRI-O's, and one of them is not the engine's: %w",
					from[i], k.val[i], key, v, ErrAnnotations)
			}
			k.val[i], k.set[i], from[i] = v, true, key
		}
	}
	return k, nil
}

// sandbox reports whether this is a pod's pause container.
func (k kube) sandbox() bool { return k.val[kubeType] == "sandbox" }

// Labels returns what the CRI engine that made a spec says of its
// container, "" where it says nothing: its Kubernetes namespace, pod,
// container name and image.
func Labels(annotations map[string]string) (namespace, pod, name, image string) {
	k, _ := Container{Annotations: annotations}.kube()
	return k.val[kubeNamespace], k.val[kubePod], k.val[kubeContainer], k.val[kubeImage]
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

// Matches reports whether the container is selected. Where engines'
// annotations conflict (Choose refuses such a container), no Kubernetes
// field matches.
func (m *Match) Matches(c Container) bool {
	k, _ := c.kube()
	return m.matches(c, k)
}

func (m *Match) matches(c Container, k kube) bool {
	for key, pat := range m.Annotations {
		v, ok := c.Annotations[key]
		if !ok || !Glob(pat, v) {
			return false
		}
	}
	for i, pats := range [kubeFields][]string{kubeNamespace: m.Namespaces, kubePod: m.Pods, kubeContainer: m.Containers, kubeImage: m.Images} {
		if len(pats) > 0 && (!k.set[i] || !anyGlob(pats, k.val[i])) {
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

// Choice is what the policy chose for one container: its rule and profile.
// (The agent's per-syscall answer is notify.Decision.)
type Choice struct {
	Rule            string
	Profile         string // the profile to inject
	Requested       bool   // chosen by the container's annotation
	Existing        string
	AllowUnconfined bool
	Architectures   []string
	// Complain: the profile runs in complain mode (complain.go), by the
	// rule or at the container's request where the rule allows it.
	Complain bool
}

// Choose finds the first matching rule and applies the container's profile
// request, if it has one and the rule allows it.
func (c *Config) Choose(ctr Container) (Choice, error) {
	r := DefaultRule()
	r.Architectures = StringList{ArchProfile}
	k, err := ctr.kube()
	if err != nil {
		return Choice{}, err
	}
	for _, rule := range c.Rules {
		if rule.Match.matches(ctr, k) {
			r = rule
			break
		}
	}
	d := Choice{
		Rule: r.Name, Profile: r.Profile, Existing: r.Existing,
		AllowUnconfined: r.AllowUnconfined, Architectures: r.Architectures,
		Complain: !r.Enforced(),
	}
	if err := d.complainRequest(r, ctr, k); err != nil {
		return d, err
	}
	want, ok := ctr.Annotations[AnnotationProfile]
	if !ok || want == r.Profile || k.sandbox() {
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

// complainRequest applies the container's AnnotationComplain, if it has
// one: "false" always enforces (more protection is never refused), "true"
// needs the rule's allow_complain. Like the profile's, a pod's request does
// not reach its pause container.
func (d *Choice) complainRequest(r Rule, ctr Container, k kube) error {
	v, ok := ctr.Annotations[AnnotationComplain]
	if !ok || k.sandbox() {
		return nil
	}
	switch v {
	case "false":
		d.Complain = false
	case "true":
		if !d.Complain && !r.AllowComplain {
			return fmt.Errorf("annotation %s=%q: rule %q enforces its profile (it has no allow_complain = true): %w", AnnotationComplain, v, r.Name, ErrNotAllowed)
		}
		d.Complain = true
	default:
		return fmt.Errorf("annotation %s=%q: must be \"true\" or \"false\"", AnnotationComplain, v)
	}
	return nil
}
