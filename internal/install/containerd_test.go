package install

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// ctrdRoot makes a tree whose config.toml is the fixture ("" for none), with
// extra files at the given host paths.
func ctrdRoot(t *testing.T, fixture string, extra map[string]string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/containerd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if fixture != "" {
		writeTestFile(t, filepath.Join(root, containerdConfig), readFixture(t, "containerd/"+fixture))
	}
	for p, f := range extra {
		writeTestFile(t, filepath.Join(root, p), readFixture(t, "containerd/"+f))
	}
	return root
}

func writeTestFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func decodeTOML(t *testing.T, p string) map[string]any {
	t.Helper()
	var m map[string]any
	if _, err := toml.DecodeFile(p, &m); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return m
}

// effectiveConfig reads config.toml and what it imports the way containerd
// does, independently of the code under test: version 2 the way 1.6/1.7
// merge (a plugin's section from the last file that has it, whole), version
// 3 the way 2.x does (key by key).
func effectiveConfig(t *testing.T, root string) map[string]any {
	t.Helper()
	top := decodeTOML(t, filepath.Join(root, containerdConfig))
	plugins, _ := top["plugins"].(map[string]any)
	if plugins == nil {
		plugins = map[string]any{}
	}
	for _, imp := range asSlice(top["imports"]) {
		files, _ := filepath.Glob(filepath.Join(root, imp.(string)))
		for _, f := range files {
			sub := decodeTOML(t, f)
			if v, ok := sub["version"]; ok && v != top["version"] {
				t.Errorf("%s: version %v, config.toml has %v", f, v, top["version"])
			}
			sp, _ := sub["plugins"].(map[string]any)
			if top["version"] == int64(3) {
				deepMerge(plugins, sp)
			} else {
				for k, v := range sp {
					plugins[k] = v
				}
			}
		}
	}
	return plugins
}

func runtimesOf(t *testing.T, plugins map[string]any, version int64) map[string]any {
	t.Helper()
	cri := criV2
	if version == 3 {
		cri = criV3
	}
	rts, ok := lookup(plugins, cri, "containerd", "runtimes")
	if !ok {
		t.Fatalf("no %s containerd.runtimes in %v", cri, plugins)
	}
	return rts
}

func installContainerd(t *testing.T, root string) *Installer {
	t.Helper()
	in := &Installer{Root: root, Prefix: "/usr/local", Engines: []string{"containerd"}, EnginesNamed: true, Out: &strings.Builder{}, BinDir: t.TempDir()}
	for _, b := range binaries {
		writeTestFile(t, filepath.Join(in.BinDir, b), []byte("#!/bin/sh\n"))
	}
	if err := in.Install(); err != nil {
		t.Fatalf("install: %v\n%s", err, in.Out)
	}
	return in
}

func TestContainerdV2Default(t *testing.T) {
	root := ctrdRoot(t, "v2-default.toml", nil)
	in := installContainerd(t, root)
	t.Logf("%s", in.Out)
	plugins := effectiveConfig(t, root)
	rts := runtimesOf(t, plugins, 2)
	shim, _ := rts["seccomp-shim"].(map[string]any)
	opts, _ := shim["options"].(map[string]any)
	if opts["BinaryName"] != testShim || opts["SystemdCgroup"] != true {
		t.Errorf("seccomp-shim options: %v", opts)
	}
	if shim["runtime_type"] != runcV2 || !reflect.DeepEqual(shim["pod_annotations"], []any{"seccomp-shim.io/*"}) {
		t.Errorf("seccomp-shim runtime: %v", shim)
	}
	runc, _ := lookup(rts, "runc", "options")
	if runc["SystemdCgroup"] != true || runc["BinaryName"] != "" {
		t.Errorf("runc options changed: %v", runc)
	}
	// Everything else of the CRI section survives containerd 1.x's
	// whole-section merge.
	cri := plugins[criV2].(map[string]any)
	if cri["sandbox_image"] != "registry.k8s.io/pause:3.6" {
		t.Errorf("sandbox_image: %v", cri["sandbox_image"])
	}
	if cni, _ := lookup(cri, "cni"); cni["bin_dir"] != "/opt/cni/bin" {
		t.Errorf("cni: %v", cni)
	}
	// And the whole effective CRI section is what config.toml had, plus
	// the runtime.
	orig := decodeTOML(t, filepath.Join("testdata/containerd/v2-default.toml"))
	origCRI, _ := lookup(orig, "plugins", criV2)
	delete(rts, "seccomp-shim")
	if !reflect.DeepEqual(cri, origCRI) {
		t.Errorf("the CRI section differs from config.toml's beyond the runtime")
	}
	// containerd config default has `imports = []`: filled in place.
	cfg, _ := os.ReadFile(filepath.Join(root, containerdConfig))
	if !strings.HasPrefix(string(cfg), "disabled_plugins = []\nimports = [\"/etc/containerd/conf.d/seccomp-shim.toml\"]\n") {
		t.Errorf("config.toml starts\n%s", cfg[:200])
	}
}

func TestContainerdV2DebianNoRunc(t *testing.T) {
	root := ctrdRoot(t, "v2-debian.toml", nil)
	in := installContainerd(t, root)
	plugins := effectiveConfig(t, root)
	rts := runtimesOf(t, plugins, 2)
	// Declaring a runtime drops containerd 1.x's built-in runc; the
	// drop-in declares it again, or the CRI plugin would not start.
	if runc, _ := rts["runc"].(map[string]any); runc["runtime_type"] != runcV2 {
		t.Errorf("runc: %v", rts["runc"])
	}
	if opts, _ := lookup(rts, "seccomp-shim", "options"); opts["BinaryName"] != testShim {
		t.Errorf("seccomp-shim: %v", rts["seccomp-shim"])
	}
	if cni, _ := lookup(plugins, criV2, "cni"); cni["bin_dir"] != "/usr/lib/cni" {
		t.Errorf("Debian's cni bin_dir lost: %v", cni)
	}
	if _, ok := plugins["io.containerd.internal.v1.opt"]; !ok {
		t.Errorf("other plugins lost")
	}
	cfg, _ := os.ReadFile(filepath.Join(root, containerdConfig))
	if want := "version = 2\nimports = [\"/etc/containerd/conf.d/seccomp-shim.toml\"]\n\n[plugins]\n"; !strings.HasPrefix(string(cfg), want) {
		t.Errorf("config.toml:\n%s", cfg)
	}
	drop, _ := os.ReadFile(filepath.Join(root, containerdDropIn))
	t.Logf("%s\n%s", in.Out, drop)
	if strings.Contains(string(drop), "\n[plugins]\n") || !strings.Contains(string(drop), "\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.seccomp-shim.options]\nBinaryName = \"/usr/local/bin/seccomp-shim\"\n") {
		t.Errorf("drop-in:\n%s", drop)
	}
}

func TestContainerdV3(t *testing.T) {
	for _, fixture := range []string{"v3-default.toml", "v3-minimal.toml"} {
		t.Run(fixture, func(t *testing.T) {
			root := ctrdRoot(t, fixture, nil)
			installContainerd(t, root)
			drop, _ := os.ReadFile(filepath.Join(root, containerdDropIn))
			t.Logf("\n%s", drop)
			plugins := effectiveConfig(t, root)
			rts := runtimesOf(t, plugins, 3)
			opts, _ := lookup(rts, "seccomp-shim", "options")
			if opts["BinaryName"] != testShim || opts["SystemdCgroup"] != true {
				t.Errorf("seccomp-shim options: %v", opts)
			}
			if runc, _ := lookup(rts, "runc", "options"); runc["SystemdCgroup"] != true {
				t.Errorf("runc: %v", runc)
			}
			// 2.x merges key by key: the drop-in holds the runtime only.
			d := decodeTOML(t, filepath.Join(root, containerdDropIn))
			if d["version"] != int64(3) {
				t.Errorf("drop-in version %v", d["version"])
			}
			if r, _ := lookup(d, "plugins", criV3, "containerd", "runtimes"); len(r) != 1 || len(d["plugins"].(map[string]any)) != 1 {
				t.Errorf("drop-in has more than the runtime: %v", d)
			}
			if fixture == "v3-default.toml" {
				if shim, _ := lookup(rts, "seccomp-shim"); shim["sandboxer"] != "podsandbox" {
					t.Errorf("the default runtime's settings not copied: %v", shim)
				}
			}
		})
	}
}

func TestContainerdExistingImports(t *testing.T) {
	root := ctrdRoot(t, "v2-imports.toml", map[string]string{"/etc/containerd/extra.toml": "extra.toml"})
	in := installContainerd(t, root)
	cfg, _ := os.ReadFile(filepath.Join(root, containerdConfig))
	if want := "imports = [\n  \"/etc/containerd/extra.toml\", # registry mirrors\n  \"/etc/containerd/conf.d/seccomp-shim.toml\",\n]\n"; !strings.Contains(string(cfg), want) {
		t.Errorf("config.toml:\n%s", cfg)
	}
	// The runc entry's BinaryName is not the shim's real runtime: say so.
	if !strings.Contains(in.Out.(*strings.Builder).String(), "/usr/sbin/runc (BinaryName)") {
		t.Errorf("no warning about runc's BinaryName:\n%s", in.Out)
	}
	plugins := effectiveConfig(t, root)
	shim, _ := lookup(runtimesOf(t, plugins, 2), "seccomp-shim")
	if !reflect.DeepEqual(shim["pod_annotations"], []any{"example.com/*", "seccomp-shim.io/*"}) {
		t.Errorf("pod_annotations: %v", shim["pod_annotations"])
	}
	if _, ok := plugins["io.containerd.internal.v1.opt"]; !ok {
		t.Errorf("extra.toml's plugin lost")
	}
}

func TestContainerdGlobAlreadyImports(t *testing.T) {
	root := ctrdRoot(t, "v2-glob.toml", nil)
	orig, _ := os.ReadFile(filepath.Join(root, containerdConfig))
	in := installContainerd(t, root)
	cfg, _ := os.ReadFile(filepath.Join(root, containerdConfig))
	if string(cfg) != string(orig) {
		t.Errorf("config.toml edited though its imports cover the drop-in:\n%s", cfg)
	}
	if in.state.Containerd != nil {
		t.Errorf("recorded an edit: %+v", in.state.Containerd)
	}
	if opts, _ := lookup(runtimesOf(t, effectiveConfig(t, root), 2), "seccomp-shim", "options"); opts["SystemdCgroup"] != true {
		t.Errorf("options: %v", opts)
	}
}

// A drop-in that containerd 1.x reads after ours and that has a CRI
// section of its own would hide the runtime: install says so.
func TestContainerdLaterDropInWarns(t *testing.T) {
	root := ctrdRoot(t, "v2-glob.toml", map[string]string{"/etc/containerd/conf.d/zz-gpu.toml": "v2-glob.toml"})
	in := installContainerd(t, root)
	if !strings.Contains(in.Out.(*strings.Builder).String(), "zz-gpu.toml is imported after") {
		t.Errorf("no warning:\n%s", in.Out)
	}
}

func TestContainerdNoVersion(t *testing.T) {
	root := ctrdRoot(t, "comments-only.toml", nil)
	installContainerd(t, root)
	cfg, _ := os.ReadFile(filepath.Join(root, containerdConfig))
	if want := "version = 2\nimports = [\"/etc/containerd/conf.d/seccomp-shim.toml\"]\n# containerd config"; !strings.HasPrefix(string(cfg), want) {
		t.Errorf("config.toml:\n%s", cfg)
	}
	root = ctrdRoot(t, "v1.toml", nil)
	_, err := loadContainerd(root)
	if err == nil || !strings.Contains(err.Error(), "version 1") {
		t.Errorf("v1 config: %v", err)
	}
}

func TestContainerdNoConfig(t *testing.T) {
	root := ctrdRoot(t, "", nil)
	installContainerd(t, root)
	cfg, _ := os.ReadFile(filepath.Join(root, containerdConfig))
	if string(cfg) != "version = 2\nimports = [\"/etc/containerd/conf.d/seccomp-shim.toml\"]\n" {
		t.Errorf("config.toml:\n%s", cfg)
	}
	rts := runtimesOf(t, effectiveConfig(t, root), 2)
	if _, ok := rts["runc"]; !ok {
		t.Errorf("runc not declared: %v", rts)
	}
}

func TestContainerdBadConfig(t *testing.T) {
	root := t.TempDir()
	writeTestFile(t, filepath.Join(root, containerdConfig), []byte("version = 2\n[plugins\n"))
	_, err := loadContainerd(root)
	if err == nil || !strings.Contains(err.Error(), containerdConfig+": not valid TOML") {
		t.Errorf("got %v", err)
	}
	writeTestFile(t, filepath.Join(root, containerdConfig), []byte("version = 4\n"))
	if _, err := loadContainerd(root); err == nil || !strings.Contains(err.Error(), "version = 4") {
		t.Errorf("got %v", err)
	}
}

// The text edits of imports, on their own: add, then remove gives back the
// original; the edit changes nothing else containerd sees (checkImport).
func TestImportEdits(t *testing.T) {
	for name, doc := range map[string]string{
		"empty array":         "version = 2\nimports = []\n",
		"one":                 "version = 2\nimports = [\"/a.toml\"]\n",
		"trailing comma":      "version = 2\nimports = [\n  '/a.toml',\n]\n[x]\n",
		"comment in array":    "version = 2\nimports = [ # files\n  \"/a.toml\" # a\n  , \"/b.toml\"\n]\n",
		"no imports":          "# hi\nversion = 3\n\n[plugins]\n",
		"version last":        "version = 2",
		"version with spaces": "  version   =   2   # two\nroot = \"/x\"\n",
		"string with hash":    "version = 2\nroot = \"/var/#lib\" # c\nimports = [\"/a#b.toml\"]\n",
		"multi-line string":   "version = 2\nx = \"\"\"\n[not a header]\n\"\"\"\n",
		"dotted keys":         "version = 2\na.b = 1\n\"c.d\".e = 'x'\n",
		"imports, no version": "imports = ['/a.toml'] # x\n",
		"neither":             "# c\n",
	} {
		t.Run(name, func(t *testing.T) {
			v := &ctrdView{exists: true, doc: []byte(doc), written: 2}
			if !strings.Contains(doc, "version") {
				v.written = 0
			}
			out, st, err := v.addImport()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", out)
			back, missing := removeImport(out, st)
			if string(back) != doc || len(missing) > 0 {
				t.Errorf("removed: %q (missing %v), want %q", back, missing, doc)
			}
		})
	}
}

func TestRenderDropInTidy(t *testing.T) {
	content := map[string]any{
		"version": int64(2),
		"plugins": map[string]any{criV2: map[string]any{
			"sandbox_image": "x",
			"registry":      map[string]any{"mirrors": map[string]any{}},
			"list":          []map[string]any{{"a": int64(1)}},
			"containerd":    map[string]any{"runtimes": map[string]any{"r": map[string]any{"options": map[string]any{"k": true}}}},
		}},
	}
	out, err := renderDropIn(content, runtimeHeader(content))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out)
	for _, gone := range []string{"[plugins]\n", ".containerd]\n", ".runtimes]\n", ".registry]\n"} {
		if strings.Contains(string(out), gone) {
			t.Errorf("empty table header %q kept", gone)
		}
	}
	// An empty table with nothing under it is kept: it exists.
	if !strings.Contains(string(out), ".registry.mirrors]\n") {
		t.Errorf("empty leaf table dropped")
	}
}

// decodeTOMLStrict decodes and fails on keys v has no field for.
func decodeTOMLStrict(data []byte, v any) (toml.MetaData, error) {
	md, err := toml.Decode(string(data), v)
	if err == nil && len(md.Undecoded()) > 0 {
		err = fmt.Errorf("undecoded keys %v", md.Undecoded())
	}
	return md, err
}

// The node's own containerd, where there is one, merges config.toml and the
// drop-in as it would at start (`containerd config dump` only reads the
// files; no daemon starts): the runtime is there with the runc entry's
// options, and nothing of the CRI section is lost.
func TestContainerdConfigDump(t *testing.T) {
	bin, err := exec.LookPath("containerd")
	if err != nil || testing.Short() {
		t.Skip("no containerd binary, or -short")
	}
	for _, fixture := range []string{"v2-default.toml", "v2-debian.toml", "v2-imports.toml"} {
		t.Run(fixture, func(t *testing.T) {
			root := ctrdRoot(t, fixture, map[string]string{"/etc/containerd/extra.toml": "extra.toml"})
			installContainerd(t, root)
			// Point the imports at the tree instead of the host's /etc.
			p := filepath.Join(root, containerdConfig)
			cfg, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.ReplaceAll(cfg, []byte(`"/etc/containerd/`), []byte(`"`+root+`/etc/containerd/`)), 0o644)
			out, err := exec.Command(bin, "--config", p, "config", "dump").Output()
			if err != nil {
				t.Fatalf("containerd config dump: %v", err)
			}
			var dump map[string]any
			if _, err := toml.Decode(string(out), &dump); err != nil {
				t.Fatal(err)
			}
			rts, _ := lookup(dump, "plugins", criV2, "containerd", "runtimes")
			shim, _ := lookup(rts, "seccomp-shim", "options")
			runc, _ := lookup(rts, "runc", "options")
			if shim["BinaryName"] != testShim || runc == nil || shim["SystemdCgroup"] != runc["SystemdCgroup"] {
				t.Errorf("seccomp-shim options %v, runc options %v", shim, runc)
			}
			orig := decodeTOML(t, filepath.Join("testdata/containerd", fixture))
			if want, ok := lookup(orig, "plugins", criV2, "cni"); ok {
				if got, _ := lookup(dump, "plugins", criV2, "cni"); got["bin_dir"] != want["bin_dir"] {
					t.Errorf("cni bin_dir %v, config.toml has %v", got["bin_dir"], want["bin_dir"])
				}
			}
		})
	}
}
