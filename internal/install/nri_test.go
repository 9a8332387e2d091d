package install

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/seccomp-shim/seccomp-shim/internal/nriplugin"
)

// nriRoot is a node whose containerd config.toml is config ("" for none).
func nriRoot(t *testing.T, config string) string {
	t.Helper()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/containerd"), 0o755)
	if config != "" {
		writeTestFile(t, filepath.Join(root, containerdConfig), []byte(config))
	}
	return root
}

func installNRI(t *testing.T, root string, args ...string) string {
	t.Helper()
	out, code := run(t, append([]string{"--root", root, "--bin", testBins(t), "--engines", "containerd", "install"}, args...)...)
	if code != 0 {
		t.Fatalf("install %v: %d\n%s", args, code, out)
	}
	return out
}

func agentExec(t *testing.T, root string) string {
	t.Helper()
	unit, err := os.ReadFile(filepath.Join(root, unitDir, agentUnitName))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(unit), "\n") {
		if strings.HasPrefix(l, "ExecStart=") {
			return l
		}
	}
	t.Fatalf("no ExecStart in\n%s", unit)
	return ""
}

// Where containerd 2.x runs NRI (its default), install registers the plugin
// and touches nothing of containerd's: no drop-in, no imports entry, no
// restart to ask for. Install again changes nothing; uninstall leaves the
// node as it was.
func TestNRIEnabledTouchesNoContainerdFile(t *testing.T) {
	for _, fixture := range []string{"v3-default.toml", "v3-minimal.toml"} {
		t.Run(fixture, func(t *testing.T) {
			root := ctrdRoot(t, fixture, nil)
			before := snapshot(t, root)
			out := installNRI(t, root, "--nri=on")
			t.Logf("%s", out)
			after := snapshot(t, root)
			for p := range after {
				if strings.HasPrefix(p, "/etc/containerd") && after[p] != before[p] {
					t.Errorf("%s changed", p)
				}
			}
			if strings.Contains(out, "restart containerd") {
				t.Errorf("asks for a containerd restart:\n%s", out)
			}
			if got := agentExec(t, root); !strings.Contains(got, "/usr/local/bin/seccomp-agent --nri-socket /var/run/nri/nri.sock --socket ") {
				t.Errorf("agent unit: %s", got)
			}
			first := snapshotTimes(t, root)
			if out := installNRI(t, root, "--nri=auto"); strings.Contains(out, "created") || strings.Contains(out, "updated") {
				t.Errorf("second install (auto keeps NRI) changed something:\n%s", out)
			}
			diffSnapshots(t, "second install", snapshotTimes(t, root), first)
			if out, code := run(t, "--root", root, "status"); code != 0 || !strings.Contains(out, "NRI plugin 90-seccomp-shim at /var/run/nri/nri.sock") {
				t.Errorf("status: %d\n%s", code, out)
			}
			if out, code := run(t, "--root", root, "refresh"); code != 0 || strings.Contains(out, "updated") || strings.Contains(out, "created") {
				t.Errorf("refresh: %d\n%s", code, out)
			}
			diffSnapshots(t, "refresh", snapshotTimes(t, root), first)
			if out, code := run(t, "--root", root, "uninstall"); code != 0 {
				t.Fatalf("uninstall: %d\n%s", code, out)
			}
			got := snapshot(t, root)
			for p := range got {
				if strings.HasPrefix(p, confDir) {
					delete(got, p)
				}
			}
			diffSnapshots(t, "uninstall", got, before)
		})
	}
}

const nriOffConfig = `version = 3

[plugins.'io.containerd.nri.v1.nri']
  disable = true
  socket_path = '/run/containerd/nri.sock'

  [plugins.'io.containerd.nri.v1.nri'.default_validator]
    enable = false
    required_plugins = ['other']

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  SystemdCgroup = true
`

// Where NRI is off, a drop-in turns it on; with --nri-required, it also
// makes the plugin one the default validator requires, keeping the plugins
// already required. The agent connects to the socket containerd's config
// names. Install without --nri-required takes that back, imports entry
// included; uninstall restores config.toml byte for byte.
func TestNRIDisabledAndRequired(t *testing.T) {
	root := nriRoot(t, nriOffConfig)
	orig := []byte(nriOffConfig)
	out := installNRI(t, root, "--nri=on", "--nri-required")
	t.Logf("%s", out)
	if !strings.Contains(out, "was off: turning it on also enforces what else it says there (required_plugins [other]") {
		t.Errorf("no warning that the validator's other settings take effect:\n%s", out)
	}
	if !strings.Contains(out, "systemctl restart containerd") {
		t.Errorf("no restart asked for:\n%s", out)
	}
	drop, _ := os.ReadFile(filepath.Join(root, containerdDropIn))
	t.Logf("drop-in:\n%s", drop)
	nri, _ := lookup(effectiveConfig(t, root), nriPlugin)
	if nri["disable"] != false || nri["socket_path"] != "/run/containerd/nri.sock" {
		t.Errorf("effective NRI config: %v", nri)
	}
	dv, _ := nri["default_validator"].(map[string]any)
	if dv["enable"] != true || !reflect.DeepEqual(dv["required_plugins"], []any{"other", "seccomp-shim"}) || dv["tolerate_missing_plugins_annotation"] != nriTolerate {
		t.Errorf("default_validator: %v", dv)
	}
	if got := agentExec(t, root); !strings.Contains(got, "--nri-socket /run/containerd/nri.sock ") {
		t.Errorf("agent unit: %s", got)
	}
	if out, code := run(t, "--root", root, "status"); code != 0 || !strings.Contains(out, "required by NRI's default validator") {
		t.Errorf("status: %d\n%s", code, out)
	}

	// Without --nri-required, only "disable = false" stays.
	installNRI(t, root, "--nri=on")
	nri, _ = lookup(effectiveConfig(t, root), nriPlugin)
	if dv, _ := nri["default_validator"].(map[string]any); nri["disable"] != false || !reflect.DeepEqual(dv["required_plugins"], []any{"other"}) {
		t.Errorf("after install without --nri-required: %v", nri)
	}

	if out, code := run(t, "--root", root, "uninstall"); code != 0 {
		t.Fatalf("uninstall: %d\n%s", code, out)
	}
	if got, _ := os.ReadFile(filepath.Join(root, containerdConfig)); string(got) != string(orig) {
		t.Errorf("config.toml after uninstall:\n%s", got)
	}
	if exists(filepath.Join(root, containerdDropIn)) {
		t.Errorf("drop-in left behind")
	}
}

// Required on a node where NRI is already on: the drop-in holds the
// validator only; installing again without it removes the drop-in and the
// imports entry, leaving config.toml as it was.
func TestNRIRequiredThenNot(t *testing.T) {
	root := ctrdRoot(t, "v3-default.toml", nil)
	orig, _ := os.ReadFile(filepath.Join(root, containerdConfig))
	installNRI(t, root, "--nri=on", "--nri-required")
	d := decodeTOML(t, filepath.Join(root, containerdDropIn))
	sec, _ := lookup(d, "plugins", nriPlugin)
	if _, ok := sec["disable"]; ok || d["version"] != int64(3) {
		t.Errorf("drop-in: %v", d)
	}
	out := installNRI(t, root, "--nri=on")
	t.Logf("%s", out)
	if exists(filepath.Join(root, containerdDropIn)) {
		t.Errorf("drop-in stays without --nri-required")
	}
	if got, _ := os.ReadFile(filepath.Join(root, containerdConfig)); string(got) != string(orig) {
		t.Errorf("config.toml keeps an imports entry for a file that is gone:\n%.300s", got)
	}
	if out, code := run(t, "--root", root, "status"); code != 0 {
		t.Errorf("status: %d\n%s", code, out)
	}
}

// What NRI install refuses, each with the file, the setting and what to do,
// and the node untouched.
func TestNRIRefusals(t *testing.T) {
	for _, c := range []struct {
		name, config string
		args         []string
		want         string
	}{
		{"connections off", "version = 3\n[plugins.'io.containerd.nri.v1.nri']\ndisable_connections = true\n", []string{"--nri=on"}, "/etc/containerd/config.toml: [plugins.\"io.containerd.nri.v1.nri\"] disable_connections = true"},
		{"containerd 1.x config", "version = 2\n", []string{"--nri=on"}, "--nri=on: /etc/containerd/config.toml has version = 2; the NRI plugin registers only with containerd 2.3 or later"},
		{"required without NRI", "version = 2\n", []string{"--nri=off", "--nri-required"}, "--nri-required: seccomp-shim is registered with containerd as a runtime"},
		{"bad mode", "version = 3\n", []string{"--nri=maybe"}, "--nri \"maybe\": want auto, on or off"},
		// The plugin would not register: with required_plugins no container
		// would start, without it none would get the policy.
		{"containerd 2.2", "version = 3\n", []string{"--nri=on"}, "--nri=on: containerd is v2.2.1; the NRI plugin registers only with containerd 2.3 or later"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := nriRoot(t, c.config)
			if c.name == "containerd 2.2" {
				fakeContainerd(t, root, "v2.2.1")
			}
			before := snapshot(t, root)
			out, code := run(t, append([]string{"--root", root, "--bin", testBins(t), "--engines", "containerd", "install"}, c.args...)...)
			if code == 0 || !strings.Contains(out, c.want) {
				t.Errorf("install %v: %d, want an error with %q:\n%s", c.args, code, c.want, out)
			}
			diffSnapshots(t, "refused install", snapshot(t, root), before)
		})
	}
}

// An install keeps its way: switching between the runtime and the plugin
// would strand pods that use the other, so it takes an uninstall first.
func TestNRIModeSticks(t *testing.T) {
	root := ctrdRoot(t, "v3-minimal.toml", nil)
	installNRI(t, root, "--nri=on")
	if out, code := run(t, "--root", root, "--bin", testBins(t), "--engines", "containerd", "install", "--nri=off"); code == 0 || !strings.Contains(out, "uninstall --engines containerd") {
		t.Errorf("--nri=off over an NRI install: %d\n%s", code, out)
	}
	root = ctrdRoot(t, "v3-minimal.toml", nil)
	installNRI(t, root, "--nri=off")
	if out, code := run(t, "--root", root, "--bin", testBins(t), "--engines", "containerd", "install", "--nri=on"); code == 0 || !strings.Contains(out, "uninstall --engines containerd") {
		t.Errorf("--nri=on over a runtime install: %d\n%s", code, out)
	}
	if !exists(filepath.Join(root, containerdDropIn)) {
		t.Errorf("the runtime's drop-in went")
	}
}

// Uninstalling containerd alone keeps the agent for the other engines,
// without its NRI plugin.
func TestNRIUninstallContainerdOnly(t *testing.T) {
	root := nodeRoot(t, "v3-minimal.toml")
	bins := testBins(t)
	if out, code := run(t, "--root", root, "--bin", bins, "install", "--nri=on"); code != 0 {
		t.Fatalf("install: %d\n%s", code, out)
	}
	if !strings.Contains(agentExec(t, root), nriAgentFlag) {
		t.Fatalf("agent unit without %s", nriAgentFlag)
	}
	out, code := run(t, "--root", root, "--engines", "containerd", "uninstall")
	if code != 0 {
		t.Fatalf("uninstall: %d\n%s", code, out)
	}
	if got := agentExec(t, root); strings.Contains(got, nriAgentFlag) {
		t.Errorf("agent unit keeps the plugin: %s", got)
	}
	if out, code := run(t, "--root", root, "status"); code != 0 {
		t.Errorf("status: %d\n%s", code, out)
	}
}

func TestParseContainerdVersion(t *testing.T) {
	for out, want := range map[string][2]int{
		"containerd github.com/containerd/containerd/v2 2.4.2+unknown \n":                                  {2, 4},
		"containerd github.com/containerd/containerd/v2 v2.0.5 fb4c30d4ede3531652d86197bf3fc9515e5276d9\n": {2, 0},
		"containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n":                    {1, 6},
		"containerd containerd.io 1.7.27 05044ec0a9a75232cad458027ca83437aae3f4da\n":                       {1, 7},
	} {
		cv := parseContainerdVersion(out)
		if !cv.known || cv.major != want[0] || cv.minor != want[1] {
			t.Errorf("%q: %+v, want %v", out, cv, want)
		}
	}
	for _, garbage := range []string{"containerd: command not found", "containerd x v99999999999999999999.1.0"} {
		if cv := parseContainerdVersion(garbage); cv.known {
			t.Errorf("%q parsed: %+v", garbage, cv)
		}
	}
	if !(ctrdVersion{major: 2, minor: 3}).atLeast(nriMinimum) || (ctrdVersion{major: 2, minor: 2}).atLeast(nriMinimum) || !(ctrdVersion{major: 3}).atLeast(nriMinimum) {
		t.Errorf("atLeast %v wrong", nriMinimum)
	}
}

// FuzzParseContainerdVersion: whatever a binary prints, the parse never
// panics, and a version it finds is the digits it printed.
func FuzzParseContainerdVersion(f *testing.F) {
	f.Add("containerd github.com/containerd/containerd/v2 2.4.2+unknown \n")
	f.Add("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n")
	f.Fuzz(func(t *testing.T, out string) {
		cv := parseContainerdVersion(out)
		if !cv.known {
			return
		}
		if cv.major < 0 || cv.minor < 0 || !strings.Contains(out, cv.text) {
			t.Errorf("%q: %+v", out, cv)
		}
		if again := parseContainerdVersion("containerd x " + cv.text); again != cv {
			t.Errorf("%q: %+v, then %+v from its own text", out, cv, again)
		}
	})
}

// install names the plugin as the agent registers it, and its socket where
// NRI puts it by default: nriplugin's constants, which install can't link.
func TestNRIIdentityIsThePlugins(t *testing.T) {
	if nriName != nriplugin.Name || nriIndex != nriplugin.Index || nriSocket != nriplugin.DefaultSocket {
		t.Errorf("install says %s-%s at %s, the plugin %s-%s at %s", nriIndex, nriName, nriSocket, nriplugin.Index, nriplugin.Name, nriplugin.DefaultSocket)
	}
}

// fakeContainerd puts a containerd under root that says it is version.
func fakeContainerd(t *testing.T, root, version string) {
	t.Helper()
	p := filepath.Join(root, "usr/bin/containerd")
	writeTestFile(t, p, []byte("#!/bin/sh\necho 'containerd github.com/containerd/containerd/v2 "+version+" 0123abc'\n"))
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

// Uninstall after an NRI-only install: no container ran through the shim,
// so there is none to warn about, and config.toml, which the second install
// already gave back, is not said to be edited.
func TestNRIUninstallSaysWhatItDoes(t *testing.T) {
	root := nriRoot(t, "version = 3\n")
	fakeContainerd(t, root, "v2.4.2")
	if out := installNRI(t, root, "--nri-required"); !strings.Contains(out, "required plugin") {
		t.Fatalf("auto on containerd 2.4 did not register the NRI plugin:\n%s", out)
	}
	installNRI(t, root)
	out, code := run(t, "--root", root, "uninstall")
	t.Logf("%s", out)
	if code != 0 {
		t.Fatalf("uninstall: %d", code)
	}
	if strings.Contains(out, "containers created through seccomp-shim") {
		t.Errorf("warns about shim containers on an NRI-only node")
	}
	if strings.Contains(out, containerdConfig) {
		t.Errorf("mentions %s, which it leaves as it is", containerdConfig)
	}
	if got, _ := os.ReadFile(filepath.Join(root, containerdConfig)); string(got) != "version = 3\n" {
		t.Errorf("config.toml after uninstall:\n%s", got)
	}
}

// CRI-O never gets the NRI plugin, whatever --nri says (the plugin refuses
// CRI-O, whose NRI is untested): its runtime handler is registered, and the
// agent's unit has no --nri-socket. containerd 2.4 on the same node changes
// nothing.
func TestNRINeverForCRIO(t *testing.T) {
	for _, mode := range []string{NRIAuto, NRIOn} {
		t.Run(mode, func(t *testing.T) {
			root := t.TempDir()
			writeTestFile(t, filepath.Join(root, "/etc/crio/crio.conf"), []byte("[crio.runtime]\ndefault_runtime = \"runc\"\n"))
			fakeContainerd(t, root, "v2.4.2")
			out, code := run(t, "--root", root, "--bin", testBins(t), "--engines", "crio", "install", "--nri="+mode)
			t.Logf("%s", out)
			if code != 0 {
				t.Fatalf("install: %d", code)
			}
			if got := agentExec(t, root); strings.Contains(got, nriAgentFlag) {
				t.Errorf("agent unit registers the NRI plugin: %s", got)
			}
			if !exists(filepath.Join(root, crioDropIn)) {
				t.Errorf("no runtime handler %s", crioDropIn)
			}
			if st, _, err := loadState(root); err != nil || st.Containerd != nil {
				t.Errorf("install state: %+v, %v", st, err)
			}
		})
	}
}
