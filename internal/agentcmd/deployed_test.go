package agentcmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// TestDeployedCommandLines: every seccomp-agent command line the project
// ships (the systemd units, the DaemonSet) still parses: with --help added
// it prints the usage and exits 0, where an unknown flag would exit 2.
func TestDeployedCommandLines(t *testing.T) {
	var lines [][]string
	units, _ := filepath.Glob("../../examples/systemd/*.service")
	for _, u := range units {
		data, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			if cmd, ok := strings.CutPrefix(l, "ExecStart="); ok {
				lines = append(lines, strings.Fields(cmd))
			}
		}
	}
	data, err := os.ReadFile("../../deploy/kubernetes/20-daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	if err := yaml.Unmarshal(data, &ds); err != nil {
		t.Fatal(err)
	}
	for _, c := range ds.Spec.Template.Spec.Containers {
		lines = append(lines, c.Command)
	}
	n := 0
	for _, l := range lines {
		if len(l) == 0 || filepath.Base(l[0]) != "seccomp-agent" {
			continue
		}
		n++
		if code, out, errOut := runMain(append(l[1:], "--help")...); code != 0 || !strings.Contains(out, "USAGE:") {
			t.Errorf("%q: exit %d, stderr %q", l, code, errOut)
		}
	}
	if n < 4 {
		t.Errorf("%d seccomp-agent command lines found, want the 2 units' and the DaemonSet's 2", n)
	}
}
