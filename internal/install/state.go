package install

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
)

// State is install-state.json: what install did that uninstall can't
// recompute. Paths are the host's (without --root), so the record stays
// true whether it was written from the host or from a container with the
// host mounted elsewhere. It holds no timestamps: installing again must
// reproduce it byte for byte.
type State struct {
	Prefix  string   `json:"prefix"`
	Engines []string `json:"engines"`
	// Files install wrote whole, by what they belong to: "base" (binaries
	// and units) or an engine. config.toml is not among them: it is the
	// node's policy, and uninstall keeps it.
	Files map[string][]string `json:"files"`
	// Dirs install created, by owner, parents first; uninstall removes those
	// left empty.
	Dirs       map[string][]string `json:"dirs,omitempty"`
	Docker     *DockerState        `json:"docker,omitempty"`
	Containerd *ContainerdState    `json:"containerd,omitempty"`
}

const ownerBase = "base"

func newState(prefix string) *State {
	return &State{Prefix: prefix, Engines: []string{}, Files: map[string][]string{}, Dirs: map[string][]string{}}
}

func loadState(root string) (*State, bool, error) {
	data, exists, err := readRegular(filepath.Join(root, statePath))
	if err != nil || !exists {
		return nil, false, err
	}
	st := newState("")
	if err := json.Unmarshal(data, st); err != nil {
		return nil, true, fmt.Errorf("%s: %w", statePath, err)
	}
	if st.Files == nil {
		st.Files = map[string][]string{}
	}
	if st.Dirs == nil {
		st.Dirs = map[string][]string{}
	}
	return st, true, nil
}

func (s *State) encode() []byte {
	b, _ := json.MarshalIndent(s, "", "  ")
	return append(b, '\n')
}

func (s *State) addFile(owner, path string) {
	if !slices.Contains(s.Files[owner], path) {
		s.Files[owner] = append(s.Files[owner], path)
		slices.Sort(s.Files[owner])
	}
}

func (s *State) addDir(owner, path string) {
	for _, ds := range s.Dirs {
		if slices.Contains(ds, path) {
			return
		}
	}
	s.Dirs[owner] = append(s.Dirs[owner], path)
}

func (s *State) addEngine(e string) {
	if !slices.Contains(s.Engines, e) {
		s.Engines = append(s.Engines, e)
		slices.SortFunc(s.Engines, func(a, b string) int { return slices.Index(allEngines, a) - slices.Index(allEngines, b) })
	}
}

// forget drops what belongs to owner, once uninstall has removed it.
func (s *State) forget(owner string) {
	delete(s.Files, owner)
	delete(s.Dirs, owner)
	s.Engines = slices.DeleteFunc(s.Engines, func(e string) bool { return e == owner })
	switch owner {
	case "docker":
		s.Docker = nil
	case "containerd":
		s.Containerd = nil
	}
}

// runsShim says whether engine e's containers run through seccomp-shim (and
// need its binary to be stopped): every engine's but containerd's on the NRI
// path, where no runtime is registered.
func (s *State) runsShim(e string) bool {
	return e != "containerd" || s.Containerd == nil || !s.Containerd.NRI
}
