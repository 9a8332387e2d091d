package install

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
)

// The shipped policy's rules do what their comments promise, on specs as
// the engines write them.
func TestExampleConfigRules(t *testing.T) {
	cfg, err := policy.ParseConfig("examples/config.toml", defaultConfig)
	if err != nil {
		t.Fatal(err)
	}
	// What Docker gives the runtime: a 64-hex id, the environment of
	// `docker run -e`, no Kubernetes annotations.
	const dockerID = "3f4e1b2a9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f"
	docker := func(env ...string) *specs.Spec {
		return &specs.Spec{Process: &specs.Process{Args: []string{"sh"}, Env: append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=3f4e1b2a9c8d"}, env...)}}
	}
	for _, c := range []struct {
		name string
		spec *specs.Spec
		rule string
	}{
		{"docker run -e SECCOMP_DEBUG=1", docker("SECCOMP_DEBUG=1"), "debug"},
		{"docker run", docker(), ""},
		{"pause", &specs.Spec{Annotations: map[string]string{"io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-namespace": "team-a"}}, "pause"},
		{"tenant", &specs.Spec{Annotations: map[string]string{"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-namespace": "team-a"}}, "tenants"},
	} {
		d, err := cfg.Choose(policy.ContainerOf(c.spec, dockerID))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if d.Rule != c.rule && !(c.rule == "" && d.Rule == policy.DefaultRule().Name) {
			t.Errorf("%s: rule %q, want %q", c.name, d.Rule, c.rule)
		}
	}
}

// One log layout everywhere: the shim's and the hook's records in
// /var/log/seccomp-shim/shim.log, the agent's audit log in
// /var/log/seccomp-shim/audit.log, the hook's failures (written even when
// the config can't be read) in /var/log/seccomp-shim/hook.log, in the
// shipped policy, the agent's and the hook's defaults, the units, the hooks.d
// files, the manifests and the docs.
func TestLogPathsAgree(t *testing.T) {
	want := []string{"/var/log/seccomp-shim", "/var/log/seccomp-shim/", "/var/log/seccomp-shim/audit.log", "/var/log/seccomp-shim/shim.log", "/var/log/seccomp-shim/hook.log"}
	files := []string{
		"examples/config.toml", "internal/install/assets/config.toml",
		"examples/systemd/seccomp-agent.service", "internal/agentcmd/agent.go",
		"internal/hook/hook.go", "examples/hooks.d/seccomp-shim.json", "examples/hooks.d/seccomp-shim-check.json",
	}
	for _, glob := range []string{"deploy/kubernetes/*.yaml", "deploy/kubernetes/nri/*.yaml", "docs/*.md", "README.md"} {
		m, _ := filepath.Glob(filepath.Join("..", "..", glob))
		for _, f := range m {
			rel, _ := filepath.Rel(filepath.Join("..", ".."), f)
			files = append(files, rel)
		}
	}
	re := regexp.MustCompile(`/var/log/seccomp-shim[^\s"'` + "`" + `),\]]*`)
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join("..", "..", f))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range re.FindAllString(string(data), -1) {
			if !slices.Contains(want, strings.TrimRight(p, ".:")) {
				t.Errorf("%s names %s: the layout is %v", f, p, want[2:])
			}
		}
	}
	cfg, err := policy.ParseConfig("examples/config.toml", defaultConfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.File != "/var/log/seccomp-shim/shim.log" {
		t.Errorf("examples/config.toml: log.file = %q", cfg.Log.File)
	}
}
