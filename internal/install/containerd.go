package install

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

const (
	containerdConfig = "/etc/containerd/config.toml"
	containerdDropIn = "/etc/containerd/conf.d/seccomp-shim.toml"

	// The CRI plugin that holds runtimes: containerd 1.6/1.7 (config
	// version 2) and 2.x (version 3).
	criV2 = "io.containerd.grpc.v1.cri"
	criV3 = "io.containerd.cri.v1.runtime"

	runcV2 = "io.containerd.runc.v2"
)

// ContainerdState records the text install added to config.toml.
type ContainerdState struct {
	// CreatedConfig: there was no config.toml; uninstall deletes the one
	// install wrote if nothing else was added to it since.
	CreatedConfig bool `json:"created_config,omitempty"`
	// Inserted is each text install added to config.toml, in order.
	Inserted []TextEdit `json:"inserted,omitempty"`
	// NRI: registered as the agent's NRI plugin, connecting to NRISocket,
	// rather than as a runtime.
	NRI         bool   `json:"nri,omitempty"`
	NRISocket   string `json:"nri_socket,omitempty"`
	NRIRequired bool   `json:"nri_required,omitempty"`
}

// TextEdit is text inserted into a file.
type TextEdit struct {
	Text string `json:"text"`
	// InImports: inserted inside the existing imports array, not as lines.
	InImports bool `json:"in_imports,omitempty"`
}

// ctrdView is containerd's configuration as install needs it.
type ctrdView struct {
	exists  bool
	doc     []byte
	written int64 // version as written in config.toml; 0 if absent
	version int64 // the version the drop-in is written for: 2 or 3
	covered bool  // config.toml's imports already reach the drop-in
	// plugins is the [plugins] table containerd would use without the
	// drop-in, merged from config.toml and what it imports.
	plugins  map[string]any
	warnings []string
}

// loadContainerd reads config.toml and its imports under root. Files
// are named by their host path (without root) in errors.
func loadContainerd(root string) (*ctrdView, error) {
	v := &ctrdView{version: 2, plugins: map[string]any{}}
	doc, exists, err := readRegular(filepath.Join(root, containerdConfig))
	if err != nil {
		return nil, err
	}
	if !exists {
		// No file: containerd runs on its defaults, which any version reads
		// as 2; 2.x migrates it.
		return v, nil
	}
	v.exists, v.doc = true, doc
	var top map[string]any
	if _, err := toml.Decode(string(doc), &top); err != nil {
		return nil, fmt.Errorf("%s: not valid TOML: %w", containerdConfig, err)
	}
	switch ver := top["version"].(type) {
	case nil:
		// containerd reads a file without a version as version 1, whose
		// plugin names differ. One that names no plugin means the same in
		// every version, so a version can be added.
		for _, k := range []string{"plugins", "disabled_plugins", "required_plugins"} {
			if _, ok := top[k]; ok {
				return nil, fmt.Errorf("%s: has no \"version\", so containerd reads it as a version 1 config; migrate it first (containerd 2.x: `containerd config migrate`; 1.x: add `version = 2` and use full plugin names such as %q)", containerdConfig, criV2)
			}
		}
	case int64:
		if ver != 2 && ver != 3 {
			return nil, fmt.Errorf("%s: version = %d: seccomp-install knows versions 2 (containerd 1.x) and 3 (containerd 2.x)", containerdConfig, ver)
		}
		v.written, v.version = ver, ver
	default:
		return nil, fmt.Errorf("%s: version is %T, not an integer", containerdConfig, ver)
	}
	order, err := importOrder(root, top)
	if err != nil {
		return nil, err
	}
	v.covered = slices.Contains(order, containerdDropIn)
	if !v.covered {
		// install appends the drop-in to config.toml's own imports, so
		// containerd reads it after those but before what they import.
		order = nil
		withOurs := maps.Clone(top)
		imps, _ := top["imports"].([]any)
		withOurs["imports"] = append(slices.Clone(imps), containerdDropIn)
		if order, err = importOrder(root, withOurs); err != nil {
			return nil, err
		}
	}
	ours := slices.Index(order, containerdDropIn)
	for i, path := range order {
		m := top
		if i > 0 {
			if path == containerdDropIn {
				continue
			}
			if m, err = decodeTOMLFile(root, path); err != nil {
				return nil, err
			}
		}
		plugins, _ := m["plugins"].(map[string]any)
		if v.version == 3 {
			// containerd 2.x merges imported files key by key.
			deepMerge(v.plugins, plugins)
			continue
		}
		// containerd 1.x replaces a plugin's whole section with the last
		// file's: a file read after the drop-in that has a CRI section
		// throws the runtime away.
		if _, ok := plugins[criV2]; ok && i > ours {
			v.warnings = append(v.warnings, fmt.Sprintf("%s is imported after %s and has its own [plugins.%q]: containerd 1.x uses only the last file's section, so it hides the seccomp-shim runtime; merge the two or rename it to sort before seccomp-shim.toml", path, containerdDropIn, criV2))
		}
		if i < ours {
			for k, p := range plugins {
				v.plugins[k] = p
			}
		}
	}
	return v, nil
}

func decodeTOMLFile(root, path string) (map[string]any, error) {
	doc, _, err := readRegular(filepath.Join(root, path))
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if _, err := toml.Decode(string(doc), &m); err != nil {
		return nil, fmt.Errorf("%s (imported by %s): not valid TOML: %w", path, containerdConfig, err)
	}
	return m, nil
}

// importOrder lists the files containerd reads, in its order: config.toml,
// then breadth first what each imports, globs expanded in sorted order. The
// drop-in is listed where it would be read, whether it exists yet or not.
func importOrder(root string, top map[string]any) ([]string, error) {
	order := []string{containerdConfig}
	loaded := map[string]bool{containerdConfig: true}
	type pending struct {
		path    string
		imports []any
	}
	queue := []pending{{containerdConfig, asSlice(top["imports"])}}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, imp := range p.imports {
			s, ok := imp.(string)
			if !ok {
				return nil, fmt.Errorf("%s: imports: %v is not a string", p.path, imp)
			}
			s = filepath.Clean(s)
			if !filepath.IsAbs(s) {
				s = filepath.Join(filepath.Dir(p.path), s)
			}
			var matches []string
			if strings.Contains(s, "*") {
				found, err := filepath.Glob(filepath.Join(root, s))
				if err != nil {
					return nil, fmt.Errorf("%s: imports: %q: %w", p.path, s, err)
				}
				for _, f := range found {
					rel, _ := filepath.Rel(root, f)
					matches = append(matches, "/"+rel)
				}
				if ok, _ := filepath.Match(s, containerdDropIn); ok && !slices.Contains(matches, containerdDropIn) {
					matches = append(matches, containerdDropIn)
					slices.Sort(matches)
				}
			} else {
				matches = []string{s}
			}
			for _, m := range matches {
				if loaded[m] {
					continue
				}
				loaded[m] = true
				order = append(order, m)
				if m == containerdDropIn {
					continue
				}
				sub, err := decodeTOMLFile(root, m)
				if err != nil {
					return nil, err
				}
				queue = append(queue, pending{m, asSlice(sub["imports"])})
			}
		}
	}
	return order, nil
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// deepMerge merges src into dst the way containerd 2.x merges imported
// files: tables key by key, anything else replaced.
func deepMerge(dst, src map[string]any) {
	for k, sv := range src {
		if sm, ok := sv.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				deepMerge(dm, sm)
				continue
			}
			dst[k] = deepCopy(sm)
			continue
		}
		dst[k] = deepCopyValue(sv)
	}
}

func deepCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopyValue(v)
	}
	return out
}

func deepCopyValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return deepCopy(v)
	case []map[string]any:
		out := make([]map[string]any, len(v))
		for i, m := range v {
			out[i] = deepCopy(m)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopyValue(e)
		}
		return out
	}
	return v
}

// table returns m[key] as a table, creating it if absent.
func table(m map[string]any, key string) map[string]any {
	if t, ok := m[key].(map[string]any); ok {
		return t
	}
	t := map[string]any{}
	m[key] = t
	return t
}

// lookup follows keys through nested tables.
func lookup(m map[string]any, keys ...string) (map[string]any, bool) {
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			return nil, false
		}
		m = next
	}
	return m, true
}

// criPlugin is the plugin that holds runtimes in the view's version.
func (v *ctrdView) criPlugin() string {
	if v.version == 3 {
		return criV3
	}
	return criV2
}

// defaultRuntime is the CRI plugin's default_runtime_name.
func (v *ctrdView) defaultRuntime() string {
	if c, ok := lookup(v.plugins, v.criPlugin(), "containerd"); ok {
		if s, ok := c["default_runtime_name"].(string); ok && s != "" {
			return s
		}
	}
	return "runc"
}

// criDisabled reports that config.toml turns the CRI plugin off, as
// Docker's packages do for the containerd they run.
func (v *ctrdView) criDisabled() bool {
	var top struct {
		Disabled []string `toml:"disabled_plugins"`
	}
	toml.Decode(string(v.doc), &top)
	for _, d := range top.Disabled {
		if d == "cri" || d == criV2 || d == v.criPlugin() {
			return true
		}
	}
	return false
}

// runtimeEntry is the seccomp-shim runtime: the default runtime's entry
// with the shim as its binary. Copying the entry matters: a pod under the
// shim must get the same cgroup driver (SystemdCgroup) as every other pod,
// or the kubelet and the runtime disagree about where it lives and it is
// killed.
func runtimeEntry(base map[string]any, shim string) (map[string]any, []string) {
	var warnings []string
	e := map[string]any{}
	if base != nil {
		if t, _ := base["runtime_type"].(string); t == "" || t == runcV2 {
			e = deepCopy(base)
		} else {
			warnings = append(warnings, fmt.Sprintf("the default runtime's runtime_type is %q, not %q: its settings are not copied to seccomp-shim", t, runcV2))
		}
	}
	e["runtime_type"] = runcV2
	var ann []any
	for _, a := range asSlice(e["pod_annotations"]) {
		ann = append(ann, a)
	}
	if !slices.Contains(ann, any(podAnnotations)) {
		ann = append(ann, podAnnotations)
	}
	// Only annotations listed here reach the spec, so without it a pod's
	// seccomp-shim.io/profile would never be seen.
	e["pod_annotations"] = ann
	opts := table(e, "options")
	if bn, _ := opts["BinaryName"].(string); bn != "" && bn != shim {
		warnings = append(warnings, fmt.Sprintf("the default runtime runs %s (BinaryName); under seccomp-shim the real runtime is what /etc/seccomp-shim/config.toml's runtime.path names, so list %s there", bn, bn))
	}
	opts["BinaryName"] = shim
	return e, warnings
}

// dropIn builds the drop-in's content for the view.
func (v *ctrdView) dropIn(shim string) (map[string]any, []string) {
	if v.version == 3 {
		base, _ := lookup(v.plugins, criV3, "containerd", "runtimes", v.defaultRuntime())
		e, w := runtimeEntry(base, shim)
		return map[string]any{
			"version": int64(3),
			"plugins": map[string]any{criV3: map[string]any{
				"containerd": map[string]any{"runtimes": map[string]any{runtimeName: e}},
			}},
		}, w
	}
	// containerd 1.x would replace config.toml's whole CRI section with
	// this file's, so the file carries that section, plus the runtime.
	var cri map[string]any
	if c, ok := v.plugins[criV2].(map[string]any); ok {
		cri = deepCopy(c)
	} else {
		cri = map[string]any{}
	}
	rts := table(table(cri, "containerd"), "runtimes")
	def := v.defaultRuntime()
	var warnings []string
	base, _ := rts[def].(map[string]any)
	if base == nil {
		if def == "runc" {
			// containerd 1.x drops its built-in runc entry once any runtime
			// is configured, and then refuses to start the CRI plugin
			// because the default runtime is missing.
			rts["runc"] = map[string]any{"runtime_type": runcV2}
		} else {
			warnings = append(warnings, fmt.Sprintf("default_runtime_name %q has no entry in containerd.runtimes", def))
		}
	}
	e, w := runtimeEntry(base, shim)
	rts[runtimeName] = e
	return map[string]any{"version": int64(2), "plugins": map[string]any{criV2: cri}}, append(warnings, w...)
}

const dropInHeaderV2 = `# Written by seccomp-install: registers the OCI runtime seccomp-shim with
# containerd's CRI plugin. ` + "`seccomp-install uninstall`" + ` removes it.
#
# containerd 1.6/1.7 do not merge a plugin's settings across files: the
# [plugins."io.containerd.grpc.v1.cri"] section of the last file read wins
# whole. So this file carries a copy of that section from config.toml (and
# what it imports) as it was when seccomp-install ran, plus the runtime.
# After editing that section in config.toml, run ` + "`seccomp-install refresh`" + `
# (then restart containerd), or this file hides your change.
`

const dropInHeaderV3 = `# Written by seccomp-install: registers the OCI runtime seccomp-shim with
# containerd's CRI plugin. ` + "`seccomp-install uninstall`" + ` removes it.
# Its settings are copied from the default runtime's entry, so pods under
# seccomp-shim get the same cgroup driver (SystemdCgroup) as the others.
`

// runtimeHeader is the runtime drop-in's header for its version.
func runtimeHeader(content map[string]any) string {
	if content["version"] == int64(3) {
		return dropInHeaderV3
	}
	return dropInHeaderV2
}

// renderDropIn encodes a drop-in under header. BurntSushi's encoder writes a header for
// every table on the way down; those with no keys of their own are dropped
// (TOML creates them implicitly), so the file reads like a hand-written one.
// The result is decoded again and must equal content.
func renderDropIn(content map[string]any, header string) ([]byte, error) {
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf)
	enc.Indent = ""
	if err := enc.Encode(content); err != nil {
		return nil, err
	}
	lines := strings.Split(buf.String(), "\n")
	var out []string
	for i, line := range lines {
		if line == "" {
			continue
		}
		if isHeader(line) && !strings.HasPrefix(line, "[[") {
			next := ""
			for _, l := range lines[i+1:] {
				if l != "" {
					next = l
					break
				}
			}
			name := strings.TrimSuffix(strings.TrimPrefix(line, "["), "]")
			if isHeader(next) && strings.HasPrefix(strings.Trim(next, "[]"), name+".") {
				continue
			}
			out = append(out, "")
		}
		out = append(out, line)
	}
	text := header + "\n" + strings.Join(out, "\n") + "\n"
	var back map[string]any
	if _, err := toml.Decode(text, &back); err != nil {
		return nil, fmt.Errorf("internal error: the drop-in does not decode: %w", err)
	}
	if !reflect.DeepEqual(back, content) {
		return nil, errors.New("internal error: the drop-in decodes to something else than was meant")
	}
	return []byte(text), nil
}

func isHeader(line string) bool { return strings.HasPrefix(line, "[") }

// addImport makes config.toml import the drop-in, by inserting text only.
func (v *ctrdView) addImport() ([]byte, ContainerdState, error) {
	var st ContainerdState
	item := tomlString(containerdDropIn)
	if !v.exists {
		text := "version = 2\nimports = [" + item + "]\n"
		st.CreatedConfig = true
		st.Inserted = []TextEdit{{Text: text}}
		return []byte(text), st, nil
	}
	doc := v.doc
	if v.written == 0 {
		// containerd 2.x refuses a drop-in whose version is higher than
		// config.toml's, and a file without one counts as version 1.
		doc = splice(doc, 0, 0, "version = 2\n")
		st.Inserted = append(st.Inserted, TextEdit{Text: "version = 2\n"})
	}
	top, err := scanTOMLTop(doc)
	if err != nil {
		return nil, st, fmt.Errorf("%s: %w", containerdConfig, err)
	}
	var out []byte
	if k, ok := top.find("imports"); ok {
		arr, err := scanTOMLArray(doc, k.valueStart, k.valueEnd)
		if err != nil {
			return nil, st, fmt.Errorf("%s: imports: %w; add %s to it by hand", containerdConfig, err, item)
		}
		var at int
		var text string
		switch {
		case len(arr.elems) == 0:
			at, text = arr.open+1, item
		case arr.trailingComma >= 0:
			at, text = arr.trailingComma+1, " "+item+","
			// One element a line: add a line like the last one, after its
			// comment if it has one.
			if eol := skipLine(doc, arr.trailingComma); eol <= arr.close {
				last := arr.elems[len(arr.elems)-1][0]
				at, text = eol, lineIndent(doc, last)+item+",\n"
			}
		default:
			at, text = arr.elems[len(arr.elems)-1][1], ", "+item
		}
		out = splice(doc, at, at, text)
		st.Inserted = append(st.Inserted, TextEdit{Text: text, InImports: true})
	} else {
		line := "imports = [" + item + "]\n"
		at := 0
		if ver, ok := top.find("version"); ok {
			at = ver.lineEnd
			if at == len(doc) && !bytes.HasSuffix(doc, []byte("\n")) {
				line = "\n" + strings.TrimSuffix(line, "\n")
			}
		}
		out = splice(doc, at, at, line)
		st.Inserted = append(st.Inserted, TextEdit{Text: line})
	}
	if err := checkImport(v.doc, out); err != nil {
		return nil, st, err
	}
	return out, st, nil
}

// checkImport makes sure the edit added the drop-in to imports (and maybe a
// version) and changed nothing else that containerd would see.
func checkImport(before, after []byte) error {
	var b, a map[string]any
	if _, err := toml.Decode(string(before), &b); err != nil {
		return err
	}
	if _, err := toml.Decode(string(after), &a); err != nil {
		return fmt.Errorf("internal error: editing %s made it invalid: %w", containerdConfig, err)
	}
	wantImports := append(slices.Clone(asSlice(b["imports"])), containerdDropIn)
	if !reflect.DeepEqual(asSlice(a["imports"]), wantImports) {
		return fmt.Errorf("internal error: editing %s gave imports %v", containerdConfig, a["imports"])
	}
	if _, ok := b["version"]; !ok {
		delete(a, "version")
	}
	delete(a, "imports")
	delete(b, "imports")
	if !reflect.DeepEqual(a, b) {
		return fmt.Errorf("internal error: editing %s changed more than imports", containerdConfig)
	}
	return nil
}

// removeImport takes out the text install inserted, newest first. It
// returns what it could not find (edited by hand since).
func removeImport(doc []byte, st ContainerdState) ([]byte, []string) {
	var missing []string
	for _, e := range slices.Backward(st.Inserted) {
		from := -1
		if e.InImports {
			if top, err := scanTOMLTop(doc); err == nil {
				if k, ok := top.find("imports"); ok {
					if i := bytes.Index(doc[k.valueStart:k.valueEnd], []byte(e.Text)); i >= 0 {
						from = k.valueStart + i
					}
				}
			}
		} else {
			for off := 0; ; {
				i := bytes.Index(doc[off:], []byte(e.Text))
				if i < 0 {
					break
				}
				if at := off + i; at == 0 || doc[at-1] == '\n' || strings.HasPrefix(e.Text, "\n") {
					from = at
					break
				}
				off += i + 1
			}
		}
		if from < 0 {
			missing = append(missing, e.Text)
			continue
		}
		doc = splice(doc, from, from+len(e.Text), "")
	}
	return doc, missing
}
