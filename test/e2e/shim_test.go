package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// TestDefaultProfile: with no policy at all, a container without a profile
// (docker's seccomp=unconfined, a bare `runc spec` bundle) gets Docker's
// default, which denies keyctl with EPERM and allows getpid.
func TestDefaultProfile(t *testing.T) {
	harness.RequireRoot(t)
	rt := &harness.Runtime{Bin: bins.shim, Root: t.TempDir(), Env: []string{"SECCOMP_SHIM_CONFIG="}}
	// Without SECCOMP_SHIM_CONFIG the shim reads /etc/seccomp-shim/config.toml,
	// which this machine may have: point it at a file with defaults only.
	cfg, _ := writeConfig(t, "")
	rt.Env = []string{"SECCOMP_SHIM_CONFIG=" + cfg}
	out := run(t, rt, "default-1", probe(t, "status", "call", "getpid", "call", "keyctl"))
	want(t, out, "Seccomp:\t2", "getpid ok", "keyctl errno EPERM 1")

	// The same bundle under plain runc has no filter: the shim made the difference.
	runc := &harness.Runtime{Bin: harness.RequireBinary(t, "runc"), Root: t.TempDir()}
	out = run(t, runc, "default-2", probe(t, "status", "call", "keyctl"))
	want(t, out, "Seccomp:\t0")
	if strings.Contains(out, "keyctl errno EPERM") {
		t.Fatalf("keyctl fails with EPERM without seccomp too; the test proves nothing:\n%s", out)
	}
}

// TestProfileErrno: a denied syscall fails with the profile's own errno.
func TestProfileErrno(t *testing.T) {
	rt, profiles := shim(t, `
[[rule]]
profile = "nokeys"
`)
	writeProfile(t, profiles, "nokeys", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
		{"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
		{"names":["add_key"],"action":"SCMP_ACT_ERRNO","errnoRet":71}]}`)
	out := run(t, rt, "errno-1", probe(t, "status", "call", "keyctl", "call", "add_key", "call", "getpid"))
	want(t, out, "Seccomp:\t2", "keyctl errno EACCES 13", "add_key errno EPROTO 71", "getpid ok")
}

// TestRulesPickProfiles: different containers get different profiles by id,
// annotation and args; a container may ask for an allowed profile.
func TestRulesPickProfiles(t *testing.T) {
	rt, profiles := shim(t, `
[[rule]]
name = "by-id"
match.ids = ["eacces-*"]
profile = "eacces"
[[rule]]
name = "by-annotation"
match.annotations = { "team" = "pay*" }
profile = "enosys"
allowed_profiles = ["eacces"]
[[rule]]
name = "strict-echo"
match.args = ["/bin/echo *"]
profile = "strict"
[[rule]]
name = "strict-annotated"
match.annotations = { "seccomp-shim.io/strict" = "1" }
profile = "strict"
`)
	writeProfile(t, profiles, "eacces", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`)
	writeProfile(t, profiles, "enosys", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}`)
	annotate := func(b string, ann map[string]string) string {
		harness.EditConfig(t, b, func(m map[string]any) { m["annotations"] = ann })
		return b
	}
	want(t, run(t, rt, "eacces-1", probe(t, "call", "keyctl")), "keyctl errno EACCES 13")
	want(t, run(t, rt, "other-1", annotate(probe(t, "call", "keyctl"), map[string]string{"team": "payments"})), "keyctl errno ENOSYS 38")
	want(t, run(t, rt, "other-2", annotate(probe(t, "call", "keyctl"), map[string]string{"team": "payments", "seccomp-shim.io/profile": "eacces"})), "keyctl errno EACCES 13")
	want(t, run(t, rt, "other-3", probe(t, "call", "keyctl")), "keyctl errno EPERM 1")

	// A profile the rule doesn't allow is refused, and the engine sees why.
	b := annotate(probe(t, "call", "keyctl"), map[string]string{"seccomp-shim.io/profile": "eacces"})
	if res, err := rt.Run(t, "other-4", b); err == nil || !strings.Contains(err.Error(), `seccomp-shim.io/profile=\"eacces\"`) {
		t.Fatalf("want a refusal naming the annotation, got %v\n%s", err, res.Stderr)
	}

	// strict: seccomp mode 1 plus what runc and a static binary's start need.
	// busybox's echo runs; mkdir is refused with EPERM where it would
	// otherwise fail with EROFS on the read-only rootfs.
	echo := harness.NewBundle(t, harness.Rootfs(t), "/bin/echo", "strict", "works")
	want(t, run(t, rt, "strict-1", echo), "strict works")
	for id, errmsg := range map[string]string{"strict-2": "Operation not permitted", "plain-2": "Read-only file system"} {
		b := harness.NewBundle(t, harness.Rootfs(t), "/bin/mkdir", "/x")
		if id == "strict-2" {
			annotate(b, map[string]string{"seccomp-shim.io/strict": "1"})
		}
		res, _ := rt.Run(t, id, b)
		if !strings.Contains(res.Stderr, errmsg) {
			t.Errorf("%s: mkdir should fail with %q:\n%s", id, errmsg, res.Stderr)
		}
	}
}

// TestUnconfinedOverridden: a container the engine left unconfined gets a
// profile unless policy allows unconfined, as it does here for one id.
func TestUnconfinedOverridden(t *testing.T) {
	rt, _ := shim(t, `
[[rule]]
name = "debug"
match.ids = ["debug-*"]
profile = "unconfined"
allow_unconfined = true
`)
	want(t, run(t, rt, "app-1", probe(t, "status")), "Seccomp:\t2")
	want(t, run(t, rt, "debug-1", probe(t, "status")), "Seccomp:\t0")
}

// TestExistingProfile: what happens to a profile the engine already set
// (docker --security-opt seccomp=file.json, a pod's seccompProfile).
func TestExistingProfile(t *testing.T) {
	rt, profiles := shim(t, `
[[rule]]
match.ids = ["keep-*"]
existing = "keep"
[[rule]]
match.ids = ["replace-*"]
existing = "replace"
[[rule]]
match.ids = ["tighten-*"]
existing = "tighten"
profile = "nomount"
`)
	writeProfile(t, profiles, "nomount", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
		{"names":["keyctl"],"action":"SCMP_ACT_ALLOW"},
		{"names":["add_key"],"action":"SCMP_ACT_ERRNO","errnoRet":71}]}`)
	bundle := func() string {
		b := probe(t, "call", "keyctl", "call", "add_key")
		harness.EditConfig(t, b, engineProfile)
		return b
	}
	// keep: the engine's EACCES for keyctl; add_key is allowed (so it fails
	// on its NULL arguments with EFAULT or EINVAL, not with a seccomp errno).
	out := run(t, rt, "keep-1", bundle())
	want(t, out, "keyctl errno EACCES 13")
	if strings.Contains(out, "add_key errno EPROTO") || strings.Contains(out, "add_key errno EPERM") {
		t.Errorf("keep: add_key denied:\n%s", out)
	}
	// replace: Docker's default instead, EPERM for both.
	want(t, run(t, rt, "replace-1", bundle()), "keyctl errno EPERM 1", "add_key errno EPERM 1")
	// tighten: ours allows keyctl but may not loosen the engine's denial, and
	// adds its own for add_key.
	want(t, run(t, rt, "tighten-1", bundle()), "keyctl errno EACCES 13", "add_key errno EPROTO 71")
}

// TestBadInput: a malformed config.json or profile fails the create with a
// clear error in the engine's log, and leaves the bundle exactly as it was.
func TestBadInput(t *testing.T) {
	rt, profiles := shim(t, `
[[rule]]
match.ids = ["badprofile-*"]
profile = "typo"
`)
	writeProfile(t, profiles, "typo", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
		{"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
		{"names":["opne"],"action":"SCMP_ACT_ALLOW"}]}`)
	for _, tc := range []struct {
		id, want string
		edit     func(path string)
	}{
		{"badjson-1", "config.json: ", func(p string) {
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o644)
		}},
		{"badprofile-1", `typo.json): syscalls[1] [\"opne\"]: unknown syscall \"opne\"`, func(string) {}},
	} {
		b := probe(t, "status")
		path := filepath.Join(b, "config.json")
		tc.edit(path)
		before, _ := os.ReadFile(path)
		res, err := rt.Run(t, tc.id, b)
		if err == nil {
			t.Fatalf("%s: container ran:\n%s", tc.id, res.Stdout)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(before, after) {
			t.Errorf("%s: config.json changed", tc.id)
		}
		leftovers, _ := filepath.Glob(filepath.Join(b, ".config.json*"))
		if len(leftovers) > 0 {
			t.Errorf("%s: temp files left: %v", tc.id, leftovers)
		}
		// The engine-facing error is a JSON line in the --log file.
		log, _ := os.ReadFile(res.LogFile)
		var line struct{ Level, Msg string }
		if err := json.Unmarshal(bytes.SplitN(log, []byte("\n"), 2)[0], &line); err != nil || line.Level != "error" {
			t.Errorf("%s: log.json %q: %v", tc.id, log, err)
		}
		if !strings.Contains(string(log), tc.want) || !strings.Contains(line.Msg, "seccomp-shim create failed: ") {
			t.Errorf("%s: log.json lacks %q:\n%s", tc.id, tc.want, log)
		}
	}
}

// TestRewriteKeepsEverything: the rewrite keeps fields nobody knows, the
// file mode, and a second create changes nothing.
func TestRewriteKeepsEverything(t *testing.T) {
	rt, _ := shim(t, "")
	b := probe(t, "status")
	harness.EditConfig(t, b, func(m map[string]any) {
		m["x-vendor"] = map[string]any{"keep": []any{1, "two"}}
		m["linux"].(map[string]any)["x-linux-future"] = true
	})
	path := filepath.Join(b, "config.json")
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	want(t, run(t, rt, "keep-fields-1", b), "Seccomp:\t2")
	m := harness.ReadConfig(t, b)
	if m["x-vendor"] == nil || m["linux"].(map[string]any)["x-linux-future"] != true {
		t.Errorf("unknown fields lost: %v", m)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	first, _ := os.ReadFile(path)
	run(t, rt, "keep-fields-2", b)
	if second, _ := os.ReadFile(path); !bytes.Equal(first, second) {
		t.Error("second create changed config.json")
	}
}
