package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestComplainChoice(t *testing.T) {
	c, err := ParseConfig("t.toml", []byte(`
[[rule]]
name = "dry"
match.annotations = { team = "dry" }
enforce = false

[[rule]]
name = "may"
match.annotations = { team = "may" }
allow_complain = true

[[rule]]
name = "strict"
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		ann     map[string]string
		want    bool
		wantErr string
	}{
		{"rule says complain", map[string]string{"team": "dry"}, true, ""},
		{"annotation asks to enforce", map[string]string{"team": "dry", AnnotationComplain: "false"}, false, ""},
		{"enforced by default", map[string]string{"team": "may"}, false, ""},
		{"allowed request", map[string]string{"team": "may", AnnotationComplain: "true"}, true, ""},
		{"request not allowed", map[string]string{AnnotationComplain: "true"}, false, `annotation seccomp-shim.io/complain="true": rule "strict" enforces its profile (it has no allow_complain = true): not allowed by policy`},
		{"bad value", map[string]string{"team": "may", AnnotationComplain: "yes"}, false, `annotation seccomp-shim.io/complain="yes": must be "true" or "false"`},
		{"pause ignores the pod's request", map[string]string{"io.kubernetes.cri.container-type": "sandbox", AnnotationComplain: "true"}, false, ""},
	} {
		d, err := c.Choose(Container{Annotations: tc.ann})
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%s: %v, want %q", tc.name, err, tc.wantErr)
			}
			if tc.wantErr != "" && strings.Contains(tc.wantErr, "not allowed") && !errors.Is(err, ErrNotAllowed) {
				t.Errorf("%s: %v is not ErrNotAllowed", tc.name, err)
			}
			continue
		}
		if err != nil || d.Complain != tc.want {
			t.Errorf("%s: complain %v, %v; want %v", tc.name, d.Complain, err, tc.want)
		}
	}
}

func TestComplainConfigErrors(t *testing.T) {
	for _, tc := range []struct{ toml, want string }{
		{"[audit]\nmode = \"off\"\n[[rule]]\nname = \"x\"\nenforce = false", `config t.toml: invalid config: rule[0] (x): enforce = false: complain mode needs the notify agent, and audit.mode is off`},
		{"[audit]\nmode = \"off\"\n[[rule]]\nallow_complain = true", `rule[0] (rule[0]): allow_complain = true: complain mode needs the notify agent`},
		{"[[rule]]\nenforce = \"no\"", `toml: line 2`},
		{"[[rule]]\ncomplain = true", `unknown keys rule.complain`},
	} {
		_, err := ParseConfig("t.toml", []byte(tc.toml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %q", tc.toml, err, tc.want)
		}
	}
}
