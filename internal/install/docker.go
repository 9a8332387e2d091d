package install

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
)

const dockerConfig = "/etc/docker/daemon.json"

// DockerState records what install did to daemon.json that uninstall must
// know to undo it.
type DockerState struct {
	// Previous is the "seccomp-shim" runtime entry that install replaced,
	// as it was written.
	Previous string `json:"previous,omitempty"`
}

// dockerEntry is the runtime entry dockerd needs: it runs path with runc's
// command line, which is all the shim wants.
func dockerEntry(shim string) []kv { return []kv{{"path", shim}} }

// addDockerRuntime returns doc with runtimes["seccomp-shim"] set to the
// shim, and what to record. doc == nil means there is no file.
func addDockerRuntime(doc []byte, exists bool, shim string) ([]byte, DockerState, error) {
	var st DockerState
	if !exists || len(bytes.TrimSpace(doc)) == 0 {
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

// removeDockerRuntime undoes addDockerRuntime, except that a "runtimes"
// key install added stays, empty: dockerd (20.10 at least) replaces its
// runtimes on reload only when daemon.json has the key, so without it the
// documented `systemctl reload docker` would keep seccomp-shim registered
// until dockerd restarts. For the same reason a daemon.json install created
// stays, as {"runtimes": {}}.
func removeDockerRuntime(doc []byte, st DockerState) ([]byte, error) {
	top, err := parseJSONDocument(doc)
	if err != nil {
		return nil, err
	}
	i, ok := top.find("runtimes")
	if !ok {
		return doc, nil
	}
	rt, err := top.child(doc, i)
	if err != nil {
		return nil, err
	}
	j, ok := rt.find(runtimeName)
	if !ok {
		return doc, nil
	}
	if st.Previous != "" {
		m := rt.members[j]
		return splice(doc, m.valueStart, m.valueEnd, st.Previous), nil
	}
	return removeMember(doc, rt, j), nil
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
