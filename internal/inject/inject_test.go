package inject_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/internal/inject"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
)

// runcSpec is laid out as `runc spec` writes it, with fields no runtime-spec
// version knows at the top level and nested, and numbers and escapes that a
// decode/encode round trip through Go values would rewrite.
const runcSpec = `{
	"ociVersion": "1.0.2-dev",
	"process": {
		"terminal": false,
		"user": {
			"uid": 0,
			"gid": 0
		},
		"args": [
			"sh",
			"-c",
			"echo \u00e9 \/ <&>"
		],
		"env": [
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		],
		"cwd": "/",
		"capabilities": {
			"bounding": [
				"CAP_KILL"
			]
		},
		"xProcessFuture": {
			"big": 1e400,
			"precise": 1.50
		}
	},
	"root": {
		"path": "rootfs",
		"readonly": true
	},
	"hostname": "runc",
	"xFuture": [
		-0,
		{},
		[]
	],
	"linux": {
		"namespaces": [
			{
				"type": "pid"
			},
			{
				"type": "mount"
			}
		],
		"xLinuxFuture": {
			"k": "v"
		},
		"maskedPaths": [
			"/proc/kcore"
		]
	},
	"annotations": {
		"org.example.key": "value"
	}
}
`

// withSeccomp is runcSpec with a profile an engine could have put there.
var withSeccomp = strings.Replace(runcSpec, `		"maskedPaths": [`, `		"seccomp": {
			"defaultAction": "SCMP_ACT_ALLOW",
			"architectures": [
				"SCMP_ARCH_X86_64"
			],
			"syscalls": [
				{
					"names": [
						"reboot"
					],
					"action": "SCMP_ACT_ERRNO"
				}
			]
		},
		"maskedPaths": [`, 1)

// config parses a policy with no profiles directory, so only the built-in
// profiles exist whatever the machine has in /etc.
// noAgent stands for a notify agent that does not answer: the tests never
// dial one (see TestAudit for one that does).
var noAgent = errors.New("test: no agent")

func config(t testing.TB, rules string) *policy.Config {
	t.Helper()
	c, err := policy.ParseConfig("test.toml", []byte("[profiles]\ndir = \"\"\n"+rules))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const (
	replaceStrict = `
[[rule]]
profile = "strict"
existing = "replace"
`
	tightenDefault = `
[[rule]]
existing = "tighten"
allowed_profiles = ["strict", "unconfined"]
allow_unconfined = true
`
	unconfinedReplace = `
[[rule]]
profile = "unconfined"
allow_unconfined = true
existing = "replace"
`
	nativeOnly = `
[[rule]]
existing = "replace"
architectures = "native"
`
)

// members returns an object's keys in order and their raw values.
func members(t testing.TB, data []byte) ([]string, map[string]json.RawMessage) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %v %v\n%s", tok, err, data)
	}
	var keys []string
	vals := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		vals[tok.(string)] = v
	}
	return keys, vals
}

// seccompOf returns the spec's linux.seccomp, or nil.
func seccompOf(t testing.TB, data []byte) json.RawMessage {
	t.Helper()
	_, top := members(t, data)
	if top["linux"] == nil {
		return nil
	}
	_, linux := members(t, top["linux"])
	return linux["seccomp"]
}

// sameExcept fails unless a and b have the same keys in the same order, with
// the same raw bytes except at skip; it returns the values at skip.
func sameExcept(t testing.TB, a, b []byte, skip string) (json.RawMessage, json.RawMessage) {
	t.Helper()
	ka, va := members(t, a)
	kb, vb := members(t, b)
	without := func(keys []string) []string {
		return slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return k == skip })
	}
	if !slices.Equal(without(ka), without(kb)) {
		t.Errorf("keys changed:\n%q\n%q", ka, kb)
	}
	for k, v := range va {
		if k != skip && !bytes.Equal(v, vb[k]) {
			t.Errorf("%q changed:\n%s\n%s", k, v, vb[k])
		}
	}
	return va[skip], vb[skip]
}

func TestSpecKeepsUnknownFieldsAndOrder(t *testing.T) {
	out, res, err := inject.Spec(config(t, ""), []byte(runcSpec), "c1", "config.json", noAgent)
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != policy.ActionInjected || res.Profile != policy.ProfileDefault {
		t.Errorf("result = %+v", res)
	}
	// The layout is runcSpec's, so every untouched value keeps its exact
	// bytes, indentation included.
	linuxIn, linuxOut := sameExcept(t, []byte(runcSpec), out, "linux")
	_, sc := sameExcept(t, linuxIn, linuxOut, "seccomp")
	keysIn, _ := members(t, []byte(runcSpec))
	keysOut, _ := members(t, out)
	if !slices.Equal(keysIn, keysOut) {
		t.Errorf("top-level keys = %q, want %q", keysOut, keysIn)
	}
	keys, _ := members(t, linuxOut)
	if want := []string{"namespaces", "xLinuxFuture", "maskedPaths", "seccomp"}; !slices.Equal(keys, want) {
		t.Errorf("linux keys = %q, want %q", keys, want)
	}
	var got struct {
		DefaultAction   string
		DefaultErrnoRet *uint
		Syscalls        []json.RawMessage
	}
	if err := json.Unmarshal(sc, &got); err != nil {
		t.Fatal(err)
	}
	if got.DefaultAction != "SCMP_ACT_ERRNO" || got.DefaultErrnoRet == nil || *got.DefaultErrnoRet != 1 || len(got.Syscalls) == 0 {
		t.Errorf("seccomp is not Docker's default: %.200s", sc)
	}
	if !strings.HasPrefix(string(out), "{\n\t\"ociVersion\"") || !strings.HasSuffix(string(out), "}\n") {
		t.Errorf("layout not kept:\n%.100s", out)
	}
}

func TestSpecKeepsExisting(t *testing.T) {
	out, res, err := inject.Spec(config(t, ""), []byte(withSeccomp), "", "config.json", noAgent)
	if err != nil || res.Action != policy.ActionKept || string(out) != withSeccomp {
		t.Errorf("Spec = %v, %+v; changed: %v", err, res, string(out) != withSeccomp)
	}
}

// rulesets holds a rule for every existing mode (keep is the default).
var rulesets = map[string]string{
	"keep": "", "replace": replaceStrict, "tighten": tightenDefault,
	"tighten-default": "[[rule]]\nexisting = \"tighten\"\n",
	"unconfined":      unconfinedReplace, "native": nativeOnly,
}

// TestSpecIdempotent: a second pass (the shim after the precreate hook, or
// the check at createRuntime) changes nothing, with the agent up or down.
func TestSpecIdempotent(t *testing.T) {
	for name, rules := range rulesets {
		cfg := config(t, rules)
		for in, data := range map[string]string{
			"none": runcSpec, "existing": withSeccomp,
			"compact": compact(t, []byte(runcSpec)), "compact-existing": compact(t, []byte(withSeccomp)),
		} {
			for agentName, agent := range map[string]error{"agent up": nil, "agent down": noAgent} {
				out, _, err := inject.Spec(cfg, []byte(data), "c1", "config.json", agent)
				if err != nil {
					t.Errorf("%s/%s/%s: %v", name, in, agentName, err)
					continue
				}
				again, res, err := inject.Spec(cfg, out, "c1", "config.json", agent)
				if err != nil || !bytes.Equal(again, out) {
					t.Errorf("%s/%s/%s: second Spec = %v; %s", name, in, agentName, err, diff(out, again))
					continue
				}
				// The audit survives the second pass.
				if agent == nil && strings.Contains(string(out), "SCMP_ACT_NOTIFY") && res.Audit != "audited" {
					t.Errorf("%s/%s: second pass audit = %q", name, in, res.Audit)
				}
			}
		}
	}
}

func TestSpecUnconfined(t *testing.T) {
	for name, tc := range map[string]struct {
		rules, data string
	}{
		"rule": {unconfinedReplace, withSeccomp},
		"annotation": {`
[[rule]]
existing = "replace"
allowed_profiles = ["unconfined"]
allow_unconfined = true
`, strings.Replace(withSeccomp, `"org.example.key": "value"`, `"seccomp-shim.io/profile": "unconfined"`, 1)},
	} {
		out, res, err := inject.Spec(config(t, tc.rules), []byte(tc.data), "", "config.json", noAgent)
		if err != nil || res.Action != policy.ActionUnconfined {
			t.Fatalf("%s: Spec = %v, %+v", name, err, res)
		}
		if sc := seccompOf(t, out); sc != nil {
			t.Errorf("%s: linux.seccomp left: %s", name, sc)
		}
		linuxIn, linuxOut := sameExcept(t, []byte(tc.data), out, "linux")
		sameExcept(t, linuxIn, linuxOut, "seccomp")
	}

	// Without allow_unconfined the annotation is refused, not ignored.
	annotated := strings.Replace(runcSpec, `"org.example.key"`, `"seccomp-shim.io/profile": "unconfined", "x"`, 1)
	_, _, err := inject.Spec(config(t, "[[rule]]\nallowed_profiles = [\"strict\"]\n"), []byte(annotated), "", "config.json", noAgent)
	if !errors.Is(err, policy.ErrNotAllowed) {
		t.Errorf("unconfined not allowed: err = %v", err)
	}
}

func TestSpecTightenRefusesUnknownFields(t *testing.T) {
	cfg := config(t, tightenDefault)
	out, res, err := inject.Spec(cfg, []byte(withSeccomp), "", "config.json", noAgent)
	if err != nil || res.Action != policy.ActionTightened {
		t.Fatalf("Spec = %v, %+v", err, res)
	}
	if !strings.Contains(string(seccompOf(t, out)), `"SCMP_ACT_ERRNO"`) {
		t.Errorf("not tightened: %s", seccompOf(t, out))
	}

	for name, data := range map[string]string{
		"top":    strings.Replace(withSeccomp, `"defaultAction"`, `"xSeccompFuture": true, "defaultAction"`, 1),
		"nested": strings.Replace(withSeccomp, `"action": "SCMP_ACT_ERRNO"`, `"action": "SCMP_ACT_ERRNO", "xRuleFuture": 1`, 1),
	} {
		out, _, err := inject.Spec(cfg, []byte(data), "", "config.json", noAgent)
		if !errors.Is(err, inject.ErrUnknownFields) || out != nil {
			t.Errorf("%s: Spec = %v, output %d bytes; want ErrUnknownFields", name, err, len(out))
		}
	}

	// Under keep, the engine's profile stays as it is, unknown fields and all.
	data := strings.Replace(withSeccomp, `"defaultAction"`, `"xSeccompFuture": true, "defaultAction"`, 1)
	if out, _, err := inject.Spec(config(t, ""), []byte(data), "", "config.json", noAgent); err != nil || string(out) != data {
		t.Errorf("keep: %v, changed: %v", err, string(out) != data)
	}
}

func TestSpecErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		rules, data, want string
	}{
		"truncated":  {"", runcSpec[:len(runcSpec)/2], "unexpected end of JSON input"},
		"not object": {"", `[]`, "not a valid OCI spec"},
		"traversal": {"", strings.Replace(runcSpec, `"org.example.key"`, `"seccomp-shim.io/profile": "../../etc/passwd", "x"`, 1),
			"not a profile name"},
		"case twin": {"", strings.Replace(runcSpec, `"hostname"`, `"Linux": {}, "hostname"`, 1), `"Linux"`},
	} {
		out, _, err := inject.Spec(config(t, tc.rules), []byte(tc.data), "", "my/config.json", noAgent)
		if err == nil || out != nil || !strings.Contains(err.Error(), "my/config.json") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Spec = %v, output %d bytes; want an error naming the source and %q", name, err, len(out), tc.want)
		}
	}
}

func writeFile(t *testing.T, data string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	return path
}

// unchanged fails unless path holds want with its old mtime, alone in its
// directory.
func unchanged(t *testing.T, path, want string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != want || fi.ModTime().Year() != 2001 {
		t.Errorf("%s was touched: mtime %v, changed: %v", path, fi.ModTime(), string(got) != want)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestFile(t *testing.T) {
	cfg := config(t, "")
	path := writeFile(t, runcSpec, 0o600)
	res, err := inject.File(cfg, path, "c1", noAgent)
	if err != nil || res.Action != policy.ActionInjected {
		t.Fatalf("File = %+v, %v", res, err)
	}
	want, _, _ := inject.Spec(cfg, []byte(runcSpec), "c1", path, noAgent)
	fi, _ := os.Stat(path)
	if got, _ := os.ReadFile(path); !bytes.Equal(got, want) || fi.Mode() != 0o600 {
		t.Errorf("file: mode %v, equal to Spec: %v", fi.Mode(), bytes.Equal(got, want))
	}

	// The second run is a no-op that leaves even the mtime alone.
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	_ = os.Chtimes(path, old, old)
	if res, err := inject.File(cfg, path, "c1", noAgent); err != nil || res.Action != policy.ActionKept {
		t.Fatalf("second File = %+v, %v", res, err)
	}
	unchanged(t, path, string(want))
}

func TestFileLeavesBadFileUntouched(t *testing.T) {
	for name, data := range map[string]string{
		"truncated": runcSpec[:len(runcSpec)-10],
		"not spec":  `{"process": "sh"}`,
		"policy":    strings.Replace(runcSpec, `"org.example.key"`, `"seccomp-shim.io/profile": "nope", "x"`, 1),
	} {
		path := writeFile(t, data, 0o644)
		res, err := inject.File(config(t, ""), path, "c1", noAgent)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: File = %+v, %v; want an error naming %s", name, res, err, path)
		}
		unchanged(t, path, data)
	}
}

// FuzzSpec rewrites arbitrary config.json documents under each kind of rule.
func FuzzSpec(f *testing.F) {
	var cfgs []*policy.Config
	for _, name := range slices.Sorted(maps.Keys(rulesets)) {
		cfgs = append(cfgs, config(f, rulesets[name]))
	}
	for i := range cfgs {
		f.Add([]byte(runcSpec), uint8(i))
		f.Add([]byte(withSeccomp), uint8(i))
	}
	f.Add([]byte(`{}`), uint8(0))
	f.Add([]byte(`{"linux":null,"process":{"args":["sh"]}}`+"\n"), uint8(1))
	f.Add([]byte(`{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_KILL","architectures":["SCMP_ARCH_X86"],"syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}]}}}`), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		cfg := cfgs[int(which)%len(cfgs)]
		// The agent is up: the audited form is the one a second pass must
		// recognise as its own.
		out, _, err := inject.Spec(cfg, data, "fuzz", "config.json", nil)
		if err != nil {
			if out != nil {
				t.Fatalf("error %v with output", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("output is not JSON:\n%s", out)
		}
		if !bytes.Equal(out, data) {
			// Format may re-lay out whitespace, so compare the tokens.
			ki, vi := members(t, data)
			ko, vo := members(t, out)
			if !slices.Equal(slices.DeleteFunc(ki, isLinux), slices.DeleteFunc(ko, isLinux)) {
				t.Fatalf("top-level keys changed: %q -> %q", ki, ko)
			}
			for k, v := range vi {
				if k != "linux" && compact(t, v) != compact(t, vo[k]) {
					t.Fatalf("%q changed: %s -> %s", k, v, vo[k])
				}
			}
		}
		again, _, err := inject.Spec(cfg, out, "fuzz", "config.json", nil)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %v; %s", err, diff(out, again))
		}
	})
}

func isLinux(k string) bool { return k == "linux" }

func compact(t testing.TB, v []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// diff describes where b first differs from a, briefly: a whole profile is
// too long to read in a failure.
func diff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	clip := func(s []byte) []byte { return s[max(0, i-80):min(len(s), i+80)] }
	return fmt.Sprintf("%d vs %d bytes, first difference at %d:\n%s\n---\n%s", len(a), len(b), i, clip(a), clip(b))
}

// TestAudit: whether the agent answers is an input, so every case runs
// without a socket.
func TestAudit(t *testing.T) {
	for _, tc := range []struct {
		name, audit string
		agent       error
		want        string // res.Audit prefix; "" for an ErrAgentUnreachable refusal
		listener    bool
	}{
		{"auto, agent up", "", nil, "audited", true},
		{"auto, agent down", "", noAgent, "degraded: " + noAgent.Error(), false},
		{"off", "mode = \"off\"\n", nil, "off by policy", false},
		{"always, degrade", "mode = \"always\"\n", noAgent, "degraded: ", false},
		{"always, refuse", "mode = \"always\"\nunreachable = \"refuse\"\n", noAgent, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(t, "[audit]\nsocket = \"/nonexistent/agent.sock\"\n"+tc.audit)
			out, res, err := inject.Spec(cfg, []byte(runcSpec), "c1", "config.json", tc.agent)
			if tc.want == "" {
				if !errors.Is(err, inject.ErrAgentUnreachable) || !errors.Is(err, noAgent) {
					t.Fatalf("Spec = %v, want ErrAgentUnreachable wrapping the dial's error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(res.Audit, tc.want) {
				t.Errorf("Audit = %q, want %q", res.Audit, tc.want)
			}
			if got := bytes.Contains(out, []byte(`"/nonexistent/agent.sock"`)); got != tc.listener {
				t.Errorf("listenerPath set: %v, want %v", got, tc.listener)
			}
		})
	}
}

// TestAuditNamesKeptProfile: when the engine's own profile stays, the
// decision and the agent's replay rule name it, not the rule's profile,
// which does not apply.
func TestAuditNamesKeptProfile(t *testing.T) {
	cfg := config(t, "[audit]\nsocket = \"/nonexistent/agent.sock\"\n")
	out, res, err := inject.Spec(cfg, []byte(withSeccomp), "c1", "config.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != policy.ActionKept || res.InForce() != policy.ProfileEngineKept {
		t.Errorf("action %s, profile in force %q; want kept, %q", res.Action, res.InForce(), policy.ProfileEngineKept)
	}
	var spec specs.Spec
	if err := json.Unmarshal(out, &spec); err != nil {
		t.Fatal(err)
	}
	meta, err := policy.ParseAuditMeta(spec.Linux.Seccomp.ListenerMetadata)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Profile != policy.ProfileEngineKept {
		t.Errorf("listener metadata names profile %q, want %q", meta.Profile, policy.ProfileEngineKept)
	}
	// Ours, injected: named as it is.
	_, res, err = inject.Spec(cfg, []byte(runcSpec), "c2", "config.json", nil)
	if err != nil || res.InForce() != "default" {
		t.Errorf("injected: profile in force %q (%v), want default", res.InForce(), err)
	}
}

// TestKeepAuditUnknownFields: under keep, with the agent up, the engine's
// profile stays whole, unknown fields and all: auditing it would re-encode it
// without them, so it is not audited, and a warning says why.
func TestKeepAuditUnknownFields(t *testing.T) {
	for name, data := range map[string]string{
		"top":    strings.Replace(withSeccomp, `"defaultAction"`, `"xSeccompFuture": true, "defaultAction"`, 1),
		"nested": strings.Replace(withSeccomp, `"action": "SCMP_ACT_ERRNO"`, `"action": "SCMP_ACT_ERRNO", "xRuleFuture": 1`, 1),
	} {
		out, res, err := inject.Spec(config(t, ""), []byte(data), "", "config.json", nil)
		if err != nil || string(out) != data {
			t.Errorf("%s: Spec = %v, changed: %v", name, err, string(out) != data)
			continue
		}
		field := map[string]string{"top": "xSeccompFuture", "nested": "xRuleFuture"}[name]
		if !strings.HasPrefix(res.Audit, "not audited") || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], field) {
			t.Errorf("%s: audit %q, warnings %q", name, res.Audit, res.Warnings)
		}
		// Where policy requires the audit, it refuses, naming the field.
		cfg := config(t, "[audit]\nmode = \"always\"\nunreachable = \"refuse\"\n")
		if _, _, err := inject.Spec(cfg, []byte(data), "", "config.json", nil); !errors.Is(err, inject.ErrUnknownFields) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: audit always, refuse: %v", name, err)
		}
	}
}

// TestTwinSeccompRefused: "seccomp" and "Seccomp" under linux decode as the
// last one in runc and as the exact key in crun: refused even where the spec
// would otherwise be left as it is (review).
func TestTwinSeccompRefused(t *testing.T) {
	out, _, err := inject.Spec(config(t, "[[rule]]\nexisting = \"replace\"\n"), []byte(runcSpec), "c1", "config.json", noAgent)
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]json.RawMessage
	if err := json.Unmarshal(out, &spec); err != nil {
		t.Fatal(err)
	}
	var linux map[string]json.RawMessage
	if err := json.Unmarshal(spec["linux"], &linux); err != nil {
		t.Fatal(err)
	}
	twin := strings.Replace(string(out), `"linux": {`, `"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}, "Seccomp": `+string(linux["seccomp"])+`,`, 1)
	twin = strings.Replace(twin, `"seccomp": `+string(linux["seccomp"]), `"x": 1`, 1)
	if !strings.Contains(twin, `"Seccomp"`) {
		t.Fatal("test spec not built")
	}
	if _, _, err := inject.Spec(config(t, "[[rule]]\nexisting = \"replace\"\n"), []byte(twin), "c1", "config.json", noAgent); err == nil || !strings.Contains(err.Error(), `member "Seccomp" would also be decoded as "seccomp"`) {
		t.Errorf("twin keys: %v", err)
	}
}
