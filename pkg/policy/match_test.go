package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pat, s string
		want   bool
	}{
		{"", "", true}, {"", "a", false}, {"*", "", true}, {"*", "anything/at/all", true},
		{"kube-*", "kube-system", true}, {"kube-*", "kube", false}, {"team-?", "team-a", true},
		{"team-?", "team-ab", false}, {"registry.k8s.io/*", "registry.k8s.io/pause:3.9", true},
		{"*/pause:*", "registry.k8s.io/a/b/pause:3.9", true}, {"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false}, {"exact", "exact", true}, {"exact", "exac", false},
		{"*a", "bbba", true}, {"**", "x", true}, {"a*", "b", false}, {"[a]", "[a]", true},
	} {
		if got := Glob(tc.pat, tc.s); got != tc.want {
			t.Errorf("Glob(%q, %q) = %v", tc.pat, tc.s, got)
		}
	}
	// A hostile pattern and value must not take exponential time.
	if Glob(strings.Repeat("*a", 30)+"b", strings.Repeat("a", 5000)) {
		t.Fatal("matched")
	}
}

func TestMatch(t *testing.T) {
	cri := Container{ID: "abc123", Annotations: map[string]string{
		"io.kubernetes.cri.sandbox-namespace": "team-a", "io.kubernetes.cri.sandbox-name": "web-1",
		"io.kubernetes.cri.container-name": "nginx", "io.kubernetes.cri.image-name": "docker.io/library/nginx:1.25",
		"io.kubernetes.cri.container-type": "container",
	}, Args: []string{"nginx", "-g", "daemon off;"}, Env: []string{"PATH=/bin", "MODE=prod"}}
	crio := Container{Annotations: map[string]string{
		"io.kubernetes.pod.namespace": "team-b", "io.kubernetes.pod.name": "db-0",
		"io.kubernetes.container.name": "postgres", "io.kubernetes.cri-o.ImageName": "postgres:16",
		"io.kubernetes.cri-o.ContainerType": "container", // CRI-O's marker: its keys count only with it
	}}
	docker := Container{ID: "d0cker", Args: []string{"/bin/sh"}}
	for _, tc := range []struct {
		name string
		m    Match
		c    Container
		want bool
	}{
		{"empty matches all", Match{}, docker, true},
		{"namespace cri", Match{Namespaces: []string{"team-*"}}, cri, true},
		{"namespace crio", Match{Namespaces: []string{"team-*"}}, crio, true},
		{"namespace absent", Match{Namespaces: []string{"*"}}, docker, false},
		{"pod", Match{Pods: []string{"web-*"}}, cri, true},
		{"pod crio", Match{Pods: []string{"db-?"}}, crio, true},
		{"container", Match{Containers: []string{"nginx", "x"}}, cri, true},
		{"container crio no", Match{Containers: []string{"nginx"}}, crio, false},
		{"image", Match{Images: []string{"docker.io/library/*"}}, cri, true},
		{"image crio", Match{Images: []string{"postgres:*"}}, crio, true},
		{"id", Match{IDs: []string{"abc*"}}, cri, true},
		{"id unknown never matches", Match{IDs: []string{"*"}}, crio, false},
		{"args joined", Match{Args: []string{"nginx -g *"}}, cri, true},
		{"args no", Match{Args: []string{"/bin/bash*"}}, docker, false},
		{"env", Match{Env: []string{"MODE=prod"}}, cri, true},
		{"env no", Match{Env: []string{"MODE=dev"}}, cri, false},
		{"annotation", Match{Annotations: map[string]string{"io.kubernetes.cri.container-type": "container"}}, cri, true},
		{"annotation absent", Match{Annotations: map[string]string{"io.kubernetes.cri.container-type": "*"}}, docker, false},
		{"all fields must match", Match{Namespaces: []string{"team-a"}, Containers: []string{"redis"}}, cri, false},
	} {
		if got := tc.m.Matches(tc.c); got != tc.want {
			t.Errorf("%s: got %v", tc.name, got)
		}
	}
}

func TestDecide(t *testing.T) {
	c, err := ParseConfig("t", []byte(`
[[rule]]
name = "a"
match.ids = ["a*"]
profile = "strict"
[[rule]]
name = "b"
match.ids = ["b*"]
profile = "default"
allowed_profiles = ["strict", "unconfined"]
allow_unconfined = true
[[rule]]
name = "c"
match.ids = ["c*"]
allowed_profiles = ["strict"]
`))
	if err != nil {
		t.Fatal(err)
	}
	ask := func(id, profile string) (Choice, error) {
		ann := map[string]string{}
		if profile != "" {
			ann[AnnotationProfile] = profile
		}
		return c.Choose(Container{ID: id, Annotations: ann})
	}
	for _, tc := range []struct {
		id, ask, rule, profile string
		err                    error
	}{
		{"a1", "", "a", "strict", nil},
		{"b1", "", "b", "default", nil},
		{"z", "", "built-in default", "default", nil},
		{"a1", "strict", "a", "strict", nil},
		{"a1", "default", "a", "", ErrNotAllowed},
		{"b1", "strict", "b", "strict", nil},
		{"b1", "unconfined", "b", "unconfined", nil},
		{"c1", "unconfined", "c", "", ErrNotAllowed},
		{"c1", "../../etc/passwd", "c", "", ErrNotAllowed},
		{"z", "strict", "built-in default", "", ErrNotAllowed},
	} {
		d, err := ask(tc.id, tc.ask)
		if !errors.Is(err, tc.err) || (err == nil && (d.Rule != tc.rule || d.Profile != tc.profile)) {
			t.Errorf("%s asking %q: %+v %v", tc.id, tc.ask, d, err)
		}
		if err != nil && !strings.Contains(err.Error(), AnnotationProfile) {
			t.Errorf("error must name the annotation: %v", err)
		}
	}
}

func TestDecideSandboxIgnoresRequest(t *testing.T) {
	c := mustConfig(t, "[[rule]]\nallowed_profiles = [\"strict\"]\n")
	for _, key := range []string{"io.kubernetes.cri.container-type", "io.kubernetes.cri-o.ContainerType"} {
		d, err := c.Choose(Container{Annotations: map[string]string{key: "sandbox", AnnotationProfile: "strict"}})
		if err != nil || d.Profile != ProfileDefault || d.Requested {
			t.Errorf("%s: %+v %v", key, d, err)
		}
	}
	d, err := c.Choose(Container{Annotations: map[string]string{"io.kubernetes.cri.container-type": "container", AnnotationProfile: "strict"}})
	if err != nil || d.Profile != ProfileStrict {
		t.Errorf("container: %+v %v", d, err)
	}
}
