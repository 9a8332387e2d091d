package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRecordChoice(t *testing.T) {
	c, err := ParseConfig("t.toml", []byte(`
[[rule]]
name = "rec"
match.annotations = { team = "rec" }
record = "web"

[[rule]]
name = "may"
match.annotations = { team = "may" }
allowed_recordings = ["team-may-*"]

[[rule]]
name = "strict"
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		ann     map[string]string
		want    string // the recording's name, "" for none
		wantErr string
	}{
		{"the rule records", map[string]string{"team": "rec"}, "web", ""},
		{"asked to enforce", map[string]string{"team": "rec", AnnotationComplain: "false"}, "", ""},
		{"not asked", map[string]string{"team": "may"}, "", ""},
		{"an allowed name", map[string]string{"team": "may", AnnotationRecord: "team-may-api"}, "team-may-api", ""},
		{"a name not allowed", map[string]string{"team": "may", AnnotationRecord: "web"}, "", `annotation seccomp-shim.io/record="web": rule "may" allows recording only as ["team-may-*"]: not allowed by policy`},
		{"a rule that allows none", map[string]string{AnnotationRecord: "web"}, "", `annotation seccomp-shim.io/record="web": rule "strict" allows no recording (it has no allowed_recordings): not allowed by policy`},
		{"a path", map[string]string{"team": "may", AnnotationRecord: "team-may-/../x"}, "", `annotation seccomp-shim.io/record="team-may-/../x": not a recording name`},
		{"record and enforce", map[string]string{"team": "may", AnnotationRecord: "team-may-x", AnnotationComplain: "false"}, "", `recording runs in complain mode, which the second refuses`},
		{"pause is never recorded", map[string]string{"team": "rec", "io.kubernetes.cri.container-type": "sandbox"}, "", ""},
	} {
		d, err := c.Choose(Container{Annotations: tc.ann})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: %v, want %q", tc.name, err, tc.wantErr)
			}
			if strings.Contains(tc.wantErr, "not allowed") && !errors.Is(err, ErrNotAllowed) {
				t.Errorf("%s: %v is not ErrNotAllowed", tc.name, err)
			}
			continue
		}
		if err != nil || d.Record != tc.want {
			t.Errorf("%s: record %q, %v; want %q", tc.name, d.Record, err, tc.want)
			continue
		}
		if tc.want != "" && (!d.Complain || d.Existing != ExistingReplace || d.Profile != RecordingProfile(tc.want)) {
			t.Errorf("%s: %+v: want complain mode, replace, the recording profile", tc.name, d)
		}
	}
}

func TestRecordConfig(t *testing.T) {
	if c, err := ParseConfig("t.toml", nil); err != nil || c.Record.Dir != DefaultRecordDir {
		t.Errorf("default record.dir %q, %v", c.Record.Dir, err)
	}
	for _, tc := range []struct{ toml, want string }{
		{"[record]\ndir = \"rel\"", `record.dir "rel": must be an absolute path`},
		{"[[rule]]\nname = \"x\"\nrecord = \"../x\"", `rule[0] (x): record "../x": must be 1-128`},
		{"[[rule]]\nallowed_recordings = [\"a/*\"]", `allowed_recordings[0] "a/*": must be a name or a glob of names`},
		{"[audit]\nmode = \"off\"\n[[rule]]\nname = \"x\"\nrecord = \"web\"", `rule[0] (x): record, allowed_recordings: recording needs the notify agent, and audit.mode is off`},
		{"[record]\ndri = \"/x\"", `unknown keys record.dri`},
	} {
		_, err := ParseConfig("t.toml", []byte(tc.toml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %q", tc.toml, err, tc.want)
		}
	}
}

// A recorded container gets the recording profile, whatever the engine
// gave it: the baseline allowed, the rest denied (to reach the agent in
// complain mode), on Docker's architectures for this host.
func TestRecordApply(t *testing.T) {
	c, err := ParseConfig("t.toml", []byte("[[rule]]\nrecord = \"web\"\narchitectures = \"native\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := LoadProfile("", ProfileDefault)
	engine, _ := p.Resolve(nil)
	spec := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Seccomp: engine}}
	res, err := c.Apply(spec, "c1")
	if err != nil {
		t.Fatal(err)
	}
	sc := spec.Linux.Seccomp
	if res.Action != ActionReplaced || !res.Complain || res.Record != "web" || res.InForce() != "recording:web" {
		t.Errorf("result %+v", res)
	}
	if sc.DefaultAction != specs.ActErrno || len(sc.Syscalls) != 1 || sc.Syscalls[0].Action != specs.ActAllow ||
		!slices.Equal(sc.Syscalls[0].Names, RecordBaseline()) || !slices.Equal(sc.Architectures, []specs.Arch{nativeArch()}) {
		t.Errorf("the recording profile: %+v", sc)
	}
	// Every syscall but the baseline (and write) reaches the agent.
	out, _, err := Complain(sc, "/run/x.sock", AuditMeta{Rule: res.Rule, Profile: res.InForce(), Record: res.Record})
	if err != nil {
		t.Fatal(err)
	}
	notified := treatments(out)
	for _, n := range []string{"clone", "socket", "personality", "bind", "keyctl", "clone3"} {
		if tr := notified[n]; tr.Uncond == nil || tr.Uncond.Action != specs.ActNotify {
			t.Errorf("%s not routed to the agent: %+v", n, tr)
		}
	}
	if m, err := ParseAuditMeta(out.ListenerMetadata); err != nil || m.Record != "web" {
		t.Errorf("metadata %+v, %v: want record web", m, err)
	}
}
