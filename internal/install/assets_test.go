package install

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
)

// The embedded copies must stay what examples/ documents: the examples are
// what docs/ and `make install` show, the copies are what seccomp-install
// writes.
func TestAssetsMatchExamples(t *testing.T) {
	for asset, example := range map[string]string{
		"config.toml":                  "config.toml",
		"seccomp-agent-holder.service": "systemd/seccomp-agent-holder.service",
		"seccomp-agent.service":        "systemd/seccomp-agent.service",
		"seccomp-shim.json":            "hooks.d/seccomp-shim.json",
	} {
		a, err := os.ReadFile(filepath.Join("assets", asset))
		if err != nil {
			t.Fatal(err)
		}
		e, err := os.ReadFile(filepath.Join("..", "..", "examples", example))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, e) {
			t.Errorf("internal/install/assets/%s differs from examples/%s: copy it again (cp examples/%s internal/install/assets/%s)", asset, example, example, asset)
		}
	}
}

func TestEmbeddedAssetsValid(t *testing.T) {
	if _, err := policy.ParseConfig("embedded config.toml", defaultConfig); err != nil {
		t.Error(err)
	}
	var hook struct {
		Hook   struct{ Path string }
		Stages []string
	}
	if err := json.Unmarshal(withPrefix(hookJSON, "/opt/s"), &hook); err != nil || hook.Hook.Path != "/opt/s/bin/seccomp-hook" || len(hook.Stages) != 1 || hook.Stages[0] != "precreate" {
		t.Errorf("hook %+v, %v", hook, err)
	}
}

func TestDropInsDecode(t *testing.T) {
	var podman struct {
		Engine struct{ Runtimes map[string][]string }
	}
	if _, err := decodeTOMLStrict(podmanConf(testShim), &podman); err != nil || podman.Engine.Runtimes["seccomp-shim"][0] != testShim {
		t.Errorf("podman drop-in: %+v %v", podman, err)
	}
	var crio struct {
		Crio struct {
			Runtime struct {
				Runtimes map[string]struct {
					RuntimePath        string   `toml:"runtime_path"`
					RuntimeType        string   `toml:"runtime_type"`
					AllowedAnnotations []string `toml:"allowed_annotations"`
				}
			}
		}
	}
	if _, err := decodeTOMLStrict(crioConf(testShim), &crio); err != nil {
		t.Fatal(err)
	}
	if r := crio.Crio.Runtime.Runtimes["seccomp-shim"]; r.RuntimePath != testShim || r.RuntimeType != "oci" || r.AllowedAnnotations[0] != policy.AnnotationProfile {
		t.Errorf("crio drop-in: %+v", r)
	}
}
