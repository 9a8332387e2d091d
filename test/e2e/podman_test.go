package e2e

import (
	"strings"
	"testing"
)

// TestPodmanRuntimeAndHookAgree: podman running seccomp-shim as its runtime
// and podman running runc with the precreate hook give a container the same
// profile, for the same policy.
func TestPodmanRuntimeAndHookAgree(t *testing.T) {
	pm, image := podman(t)
	cfg, profiles := writeConfig(t, `
[[rule]]
match.annotations = { "team" = "pay*" }
profile = "eacces"
existing = "replace"
`)
	writeProfile(t, profiles, "eacces", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`)
	// podman passes no environment to its runtime.
	wrapper := shimWrapper(t, cfg)
	hooks := hooksDir(t, cfg, "precreate")
	probeArgs := []string{image, "/bin/probe", "status", "call", "keyctl", "call", "getpid"}
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"unconfined", []string{"--security-opt", "seccomp=unconfined"}, []string{"Seccomp:\t2", "keyctl errno EPERM 1", "getpid ok"}},
		{"annotated", []string{"--annotation", "team=payments"}, []string{"Seccomp:\t2", "keyctl errno EACCES 13", "getpid ok"}},
	} {
		viaRuntime, err := pm.Run(append(append([]string{"--runtime", wrapper}, c.args...), probeArgs...)...)
		if err != nil {
			t.Fatalf("%s, --runtime: %v\n%s", c.name, err, viaRuntime)
		}
		viaHook, err := pm.Run(append(append([]string{"--hooks-dir", hooks}, c.args...), probeArgs...)...)
		if err != nil {
			t.Fatalf("%s, hook: %v\n%s", c.name, err, viaHook)
		}
		want(t, viaRuntime, c.want...)
		if strings.TrimSpace(viaRuntime) != strings.TrimSpace(viaHook) {
			t.Errorf("%s: the runtime and the hook disagree:\n--runtime:\n%s\n--hooks-dir:\n%s", c.name, viaRuntime, viaHook)
		}
	}
}

// TestPodmanStrict: strict, offered by annotation, starts under podman (no
// noNewPrivileges, so runc loads the filter before it sets up the process),
// through the hook and through the runtime.
func TestPodmanStrict(t *testing.T) {
	pm, image := podman(t)
	cfg, _ := writeConfig(t, "[[rule]]\nallowed_profiles = [\"strict\"]\nexisting = \"replace\"\n")
	for name, how := range map[string][]string{
		"hook":    {"--hooks-dir", hooksDir(t, cfg, "precreate", "createRuntime")},
		"runtime": {"--runtime", shimWrapper(t, cfg)},
	} {
		out, err := pm.Run(append(how, "--annotation", "seccomp-shim.io/profile=strict", image, "/bin/echo", "strict", "works")...)
		if err != nil || out != "strict works\n" {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
	}
}
