package install

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
)

const dockerConfig = "/etc/docker/daemon.json"

// DockerState records what install did to daemon.json that uninstall must
// know to undo it exactly.
type DockerState struct {
	// CreatedFile: there was no daemon.json.
	CreatedFile bool `json:"created_file,omitempty"`
	// CreatedRuntimes: daemon.json had no "runtimes" member.
	CreatedRuntimes bool `json:"created_runtimes,omitempty"`
	// Previous is the "seccomp-shim" runtime entry that install replaced,
	// as it was written.
	Previous string `json:"previous,omitempty"`
	// Original is daemon.json's content when it held no JSON at all (an
	// empty file, which dockerd accepts).
	Original *string `json:"original,omitempty"`
}

// dockerEntry is the runtime entry dockerd needs: it runs path with runc's
// command line, which is all the shim wants.
func dockerEntry(shim string) []kv { return []kv{{"path", shim}} }

// addDockerRuntime returns doc with runtimes["seccomp-shim"] set to the
// shim, and what to record. doc == nil means there is no file.
func addDockerRuntime(doc []byte, exists bool, shim string) ([]byte, DockerState, error) {
	var st DockerState
	if !exists || len(bytes.TrimSpace(doc)) == 0 {
		if exists {
			orig := string(doc)
			st.Original = &orig
		} else {
			st.CreatedFile = true
		}
		st.CreatedRuntimes = true
		l := layout{multiline: true, unit: "  "}
		out := []byte(l.render([]kv{{"runtimes", []kv{{runtimeName, dockerEntry(shim)}}}}) + "\n")
		return out, st, nil
	}
	top, err := parseJSONDocument(doc)
	if err != nil {
		return nil, st, err
	}
	i, ok := top.find("runtimes")
	if !ok {
		st.CreatedRuntimes = true
		out := insertMember(doc, top, "runtimes", []kv{{runtimeName, dockerEntry(shim)}})
		return out, st, checkDocker(doc, out, shim)
	}
	rt, err := top.child(doc, i)
	if err != nil {
		return nil, st, err
	}
	want := `{"path":` + jsonString(shim) + `}`
	j, ok := rt.find(runtimeName)
	if !ok {
		out := insertMember(doc, rt, runtimeName, dockerEntry(shim))
		return out, st, checkDocker(doc, out, shim)
	}
	m := rt.members[j]
	cur := doc[m.valueStart:m.valueEnd]
	if jsonValueEqual(cur, []byte(want)) {
		return doc, st, nil
	}
	// Someone registered the name by hand: take it over, and give it back on
	// uninstall.
	st.Previous = string(cur)
	l := rt.layout(doc)
	out := splice(doc, m.valueStart, m.valueEnd, l.render(dockerEntry(shim)))
	return out, st, checkDocker(doc, out, shim)
}

// removeDockerRuntime undoes addDockerRuntime. remove reports that the file
// should be deleted (install created it and nothing else is in it).
func removeDockerRuntime(doc []byte, st DockerState) (out []byte, remove bool, err error) {
	top, err := parseJSONDocument(doc)
	if err != nil {
		return nil, false, err
	}
	i, ok := top.find("runtimes")
	if !ok {
		return doc, false, nil
	}
	rt, err := top.child(doc, i)
	if err != nil {
		return nil, false, err
	}
	j, ok := rt.find(runtimeName)
	if !ok {
		return doc, false, nil
	}
	if st.Previous != "" {
		m := rt.members[j]
		return splice(doc, m.valueStart, m.valueEnd, st.Previous), false, nil
	}
	out = removeMember(doc, rt, j)
	if st.CreatedRuntimes && len(rt.members) == 1 {
		top, err = parseJSONDocument(out)
		if err != nil {
			return nil, false, err
		}
		i, _ = top.find("runtimes")
		out = removeMember(out, top, i)
		if len(top.members) == 1 {
			if st.CreatedFile {
				return nil, true, nil
			}
			if st.Original != nil {
				return []byte(*st.Original), false, nil
			}
		}
	}
	return out, false, nil
}

// checkDocker makes sure the text edit did what it means to: the new
// document decodes to the old one plus the runtime and nothing else. A bug
// here would break dockerd's start, so it is worth the second parse.
func checkDocker(before, after []byte, shim string) error {
	var b, a map[string]json.RawMessage
	if err := json.Unmarshal(before, &b); err != nil {
		return err
	}
	if err := json.Unmarshal(after, &a); err != nil {
		return fmt.Errorf("internal error: the edited daemon.json is not valid JSON: %w", err)
	}
	var brt, art map[string]json.RawMessage
	json.Unmarshal(b["runtimes"], &brt)
	if err := json.Unmarshal(a["runtimes"], &art); err != nil {
		return fmt.Errorf("internal error: edited runtimes: %w", err)
	}
	if !jsonValueEqual(art[runtimeName], []byte(`{"path":`+jsonString(shim)+`}`)) {
		return fmt.Errorf("internal error: edited runtimes.%s is %s", runtimeName, art[runtimeName])
	}
	delete(art, runtimeName)
	delete(brt, runtimeName)
	delete(a, "runtimes")
	delete(b, "runtimes")
	if !maps.EqualFunc(a, b, func(x, y json.RawMessage) bool { return jsonValueEqual(x, y) }) ||
		!maps.EqualFunc(art, brt, func(x, y json.RawMessage) bool { return jsonValueEqual(x, y) }) {
		return fmt.Errorf("internal error: the edit changed more than runtimes.%s", runtimeName)
	}
	return nil
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// dockerDefaultRuntime is daemon.json's "default-runtime", if set.
func dockerDefaultRuntime(doc []byte) string {
	var v struct {
		Default string `json:"default-runtime"`
	}
	json.Unmarshal(doc, &v)
	return v.Default
}

// dockerRegistered returns the path daemon.json gives the runtime, if any.
func dockerRegistered(doc []byte) (string, bool) {
	var v struct {
		Runtimes map[string]struct {
			Path string `json:"path"`
		} `json:"runtimes"`
	}
	if json.Unmarshal(doc, &v) != nil {
		return "", false
	}
	r, ok := v.Runtimes[runtimeName]
	return r.Path, ok
}
