package install

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

var allEngines = []string{"docker", "containerd", "podman", "crio"}

// Installer installs, uninstalls and reports seccomp-shim on the tree at
// Root.
type Installer struct {
	Root    string // every path is taken under it; "/" for the running system
	Prefix  string // binaries go to Prefix/bin
	BinDir  string // where the binaries to install are
	Engines []string
	// EnginesNamed: Engines were named by the caller rather than detected;
	// uninstall then leaves the other engines (and the binaries) alone.
	EnginesNamed bool
	DryRun       bool
	Systemd      bool // install the agent's units
	// RestartContainerd: when containerd's files changed, restart it
	// (restartContainerd) instead of telling the operator to.
	RestartContainerd bool
	// NRI chooses containerd's registration: NRIAuto, NRIOn or NRIOff ("").
	NRI string
	// NRIRequired: make the plugin one NRI's default validator requires, so
	// containers are not created while it is away.
	NRIRequired bool
	systemdRoot string // where restartContainerd runs systemctl; "" is pid 1's root
	Out         io.Writer

	state *State
	next  []string        // what the operator has to do afterwards
	made  map[string]bool // directories a dry run would have created
}

// step is one file to write or remove. Everything is computed before the
// first write, so a config install can't parse stops the run with the node
// untouched.
type step struct {
	path   string // host path
	data   []byte // nil: remove
	mode   fs.FileMode
	owner  string // what the file (or the directories made for it) belongs to
	edited bool   // a file install edits but doesn't own, such as daemon.json
	note   string
	ifNone bool   // write only if the file doesn't exist (the policy)
	next   string // what the operator must do if this step changed the file
	// onUpdate: next applies only when an existing file changed (a new
	// binary for a running agent), not when it is created.
	onUpdate bool
}

const (
	nextUnits      = "systemctl daemon-reload && systemctl enable --now seccomp-agent-holder.service seccomp-agent.service"
	nextAgent      = "systemctl restart seccomp-agent.service   # if it runs: the new binary (never restart the holder while audited containers run)"
	nextDocker     = "systemctl reload docker   # dockerd rereads runtimes on SIGHUP; then: docker run --runtime seccomp-shim ..."
	nextContainerd = "systemctl restart containerd   # it reads its config only at start; running containers keep running"
	nextCrio       = "systemctl restart crio   # CRI-O reads its runtimes only at start"
	nextStopUnits  = "systemctl disable --now seccomp-agent.service seccomp-agent-holder.service && systemctl daemon-reload   # after the engines: stopping the holder ends auditing of running containers"
)

// host is the path under Root.
func (in *Installer) host(p string) string { return filepath.Join(in.Root, p) }

func (in *Installer) shim() string { return path.Join(in.Prefix, "bin", runtimeName) }

var past = map[string]string{"create": "created", "update": "updated", "remove": "removed", "keep": "kept", "restart": "restarted"}

func (in *Installer) say(verb, p, note string) {
	switch {
	case verb == "unchanged":
	case in.DryRun:
		verb = "would " + verb
	default:
		verb = past[verb]
	}
	if note != "" {
		note = ": " + note
	}
	fmt.Fprintf(in.Out, "%-16s %s%s\n", verb, p, note)
}

func (in *Installer) warn(format string, args ...any) {
	fmt.Fprintf(in.Out, "%-16s %s\n", "warning", fmt.Sprintf(format, args...))
}

// Detect lists the engines whose config directory or binary is under root.
func Detect(root string) []string {
	signs := map[string][]string{
		"docker":     {"/etc/docker", "/usr/bin/dockerd", "/usr/sbin/dockerd", "/usr/local/bin/dockerd"},
		"containerd": {"/etc/containerd", "/usr/bin/containerd", "/usr/sbin/containerd", "/usr/local/bin/containerd"},
		// /etc/containers alone also comes with skopeo and buildah.
		"podman": {"/usr/bin/podman", "/usr/local/bin/podman", "/etc/containers/containers.conf", "/etc/containers/containers.conf.d"},
		"crio":   {"/etc/crio", "/usr/bin/crio", "/usr/local/bin/crio"},
	}
	var found []string
	for _, e := range allEngines {
		for _, p := range signs[e] {
			if exists(filepath.Join(root, p)) {
				found = append(found, e)
				break
			}
		}
	}
	return found
}

// Install puts everything in place. Running it again changes nothing.
func (in *Installer) Install() error {
	st, _, err := loadState(in.Root)
	if err != nil {
		return err
	}
	if st == nil {
		st = newState(in.Prefix)
	}
	if st.Prefix != in.Prefix {
		return fmt.Errorf("seccomp-shim is installed with --prefix %s; run uninstall first to move it to %s", st.Prefix, in.Prefix)
	}
	in.state = st
	var steps []step
	for _, b := range binaries {
		data, err := in.readBinary(b)
		if err != nil {
			return err
		}
		steps = append(steps, step{path: path.Join(in.Prefix, "bin", b), data: data, mode: 0o755, owner: ownerBase, next: nextAgent, onUpdate: true})
	}
	steps = append(steps, step{path: configPath, data: defaultConfig, mode: 0o644, ifNone: true})
	var engineSteps []step
	for _, e := range in.Engines {
		var s []step
		var err error
		switch e {
		case "docker":
			s, err = in.installDocker()
		case "containerd":
			s, err = in.installContainerd()
		case "podman":
			s = []step{
				{path: podmanDropIn, data: podmanConf(in.shim()), mode: 0o644, owner: e, note: "podman run --runtime seccomp-shim"},
				{path: podmanHook, data: withPrefix(hookJSON, in.Prefix), mode: 0o644, owner: e, note: "precreate hook: every podman container gets the policy"},
			}
		case "crio":
			s = []step{{path: crioDropIn, data: crioConf(in.shim()), mode: 0o644, owner: e, note: "runtime handler seccomp-shim", next: nextCrio}}
		}
		if err != nil {
			return err
		}
		engineSteps = append(engineSteps, s...)
	}
	// After the engines: containerd's registration decides the agent's.
	if in.Systemd {
		steps = append(steps, in.unitSteps()...)
	}
	steps = append(steps, engineSteps...)
	// The record is written before anything it describes: if a step fails
	// halfway, uninstall still knows what may have been done, and undoing
	// what wasn't is a no-op.
	planned := map[string]bool{}
	for _, s := range steps {
		if s.owner != "" && !s.edited {
			st.addFile(s.owner, s.path)
		}
		var missing []string
		for d := path.Dir(s.path); d != "/" && !planned[d] && !isDir(in.host(d)); d = path.Dir(d) {
			missing = append(missing, d)
		}
		for _, d := range slices.Backward(missing) {
			planned[d] = true
			if s.owner != "" && d != confDir {
				st.addDir(s.owner, d)
			}
		}
	}
	for _, e := range in.Engines {
		st.addEngine(e)
	}
	if err := in.mkdir(profilesDir, ""); err != nil {
		return err
	}
	// The shipped policy's log.file is there; the shim doesn't create
	// directories, and the agent (which does) may not run.
	if err := in.mkdir(logDir, ownerBase); err != nil {
		return err
	}
	if err := in.apply(step{path: statePath, data: st.encode(), mode: 0o644, note: "what uninstall undoes"}); err != nil {
		return err
	}
	for _, s := range steps {
		if err := in.apply(s); err != nil {
			return err
		}
	}
	if in.RestartContainerd && !in.DryRun && slices.Contains(in.next, nextContainerd) {
		if err := restartContainerd(in.systemdRoot, in.Out); err != nil {
			return err
		}
		in.say("restart", "containerd", "it reads the drop-in at start")
		in.next = slices.DeleteFunc(in.next, func(n string) bool { return n == nextContainerd })
	}
	in.printNext()
	return nil
}

// Refresh rewrites containerd's drop-in for config.toml as it is now, and
// nothing else: containerd 1.6/1.7 take the CRI section from the drop-in's
// copy, which hides later edits to config.toml until it is refreshed.
func (in *Installer) Refresh() error {
	st, _, err := loadState(in.Root)
	if err != nil {
		return err
	}
	if st == nil || !slices.Contains(st.Engines, "containerd") {
		return fmt.Errorf("seccomp-shim is not registered with containerd (%s): run `seccomp-install install` first", statePath)
	}
	in.state, in.Prefix = st, st.Prefix
	if st.Containerd != nil && st.Containerd.NRI {
		fmt.Fprintf(in.Out, "seccomp-shim is registered with containerd as an NRI plugin: there is no copy of config.toml to refresh\n")
		return nil
	}
	v, err := loadContainerd(in.Root)
	if err != nil {
		return err
	}
	if !v.covered {
		return fmt.Errorf("%s no longer imports %s: run `seccomp-install install` to add it again", containerdConfig, containerdDropIn)
	}
	steps, err := in.installContainerd()
	if err != nil {
		return err
	}
	if err := in.apply(steps[0]); err != nil {
		return err
	}
	in.printNext()
	return nil
}

// readBinary reads a binary to install. Run from PREFIX/bin, the source is
// the installed file itself, which then compares equal and stays as it is.
func (in *Installer) readBinary(name string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(in.BinDir, name))
	if err != nil {
		return nil, fmt.Errorf("binary to install: %w (build it with `make build`, or name its directory with --bin)", err)
	}
	return data, nil
}

func (in *Installer) installDocker() ([]step, error) {
	doc, exists, err := readRegular(in.host(dockerConfig))
	if err != nil {
		return nil, err
	}
	out, ds, err := addDockerRuntime(doc, exists, in.shim())
	if err != nil {
		return nil, fmt.Errorf("%s: %w; fix it (dockerd would refuse it too) and run install again", dockerConfig, err)
	}
	if in.state.Docker == nil {
		in.state.Docker = &ds
	}
	return []step{{path: dockerConfig, data: out, mode: 0o644, owner: "docker", edited: true, note: "runtimes." + runtimeName, next: nextDocker}}, nil
}

// unitSteps install the agent's units.
func (in *Installer) unitSteps() []step {
	var steps []step
	for _, u := range units {
		data := withPrefix(u.data, in.Prefix)
		if u.name == agentUnitName {
			data = in.agentUnit()
		}
		steps = append(steps, step{path: path.Join(unitDir, u.name), data: data, mode: 0o644, owner: ownerBase, next: nextUnits})
	}
	return steps
}

func (in *Installer) installContainerd() ([]step, error) {
	v, err := loadContainerd(in.Root)
	if err != nil {
		return nil, err
	}
	nri, err := in.useNRI(v)
	if err != nil {
		return nil, err
	}
	if nri {
		return in.installContainerdNRI(v)
	}
	if in.NRIRequired {
		return nil, errors.New("--nri-required: seccomp-shim is registered with containerd as a runtime, not an NRI plugin (--nri=on)")
	}
	content, warnings := v.dropIn(in.shim())
	for _, w := range append(v.warnings, warnings...) {
		in.warn("containerd: %s", w)
	}
	if v.criDisabled() {
		in.warn("containerd: %s disables the CRI plugin (as Docker's packages do), so nothing uses the runtime until it is enabled", containerdConfig)
	}
	data, err := renderDropIn(content, runtimeHeader(content))
	if err != nil {
		return nil, err
	}
	steps := []step{{path: containerdDropIn, data: data, mode: 0o644, owner: "containerd", note: fmt.Sprintf("runtime seccomp-shim (config version %d)", v.version), next: nextContainerd}}
	if !v.covered {
		out, cs, err := v.addImport()
		if err != nil {
			return nil, err
		}
		in.state.Containerd = &cs
		steps = append(steps, step{path: containerdConfig, data: out, mode: 0o644, owner: "containerd", edited: true, note: "imports " + containerdDropIn, next: nextContainerd})
	}
	return steps, nil
}

// apply carries out one step and records what it created.
func (in *Installer) apply(s step) error {
	p := in.host(s.path)
	if s.data == nil {
		removed := false
		if !in.DryRun {
			var err error
			if removed, err = removeFile(p); err != nil {
				return err
			}
		} else {
			removed = exists(p)
		}
		if removed {
			in.say("remove", s.path, s.note)
			in.then(s.next)
		}
		return nil
	}
	old, existed, err := readRegular(p)
	if err != nil {
		return err
	}
	if s.owner != "" && !s.edited {
		in.state.addFile(s.owner, s.path)
	}
	switch {
	case existed && s.ifNone:
		in.say("keep", s.path, "exists; never overwritten")
		return nil
	case existed && bytes.Equal(old, s.data):
		in.say("unchanged", s.path, s.note)
		return nil
	}
	if err := in.mkdir(path.Dir(s.path), s.owner); err != nil {
		return err
	}
	if !in.DryRun {
		if _, err := writeAtomic(p, s.data, s.mode); err != nil {
			return err
		}
	}
	verb := "create"
	if existed {
		verb = "update"
	}
	in.say(verb, s.path, s.note)
	if existed || !s.onUpdate {
		in.then(s.next)
	}
	return nil
}

// mkdir creates dir and its missing parents, recording them for owner
// ("" records nothing: the directory stays on uninstall).
func (in *Installer) mkdir(dir, owner string) error {
	var missing []string
	for d := dir; d != "/" && d != "."; d = path.Dir(d) {
		if isDir(in.host(d)) || in.made[d] {
			break
		}
		missing = append(missing, d)
	}
	for _, d := range slices.Backward(missing) {
		if in.made == nil {
			in.made = map[string]bool{}
		}
		in.made[d] = true
		if !in.DryRun {
			if err := os.Mkdir(in.host(d), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		}
		if owner != "" && d != confDir {
			in.state.addDir(owner, d)
		}
		in.say("create", d+"/", "")
	}
	return nil
}

func (in *Installer) then(next string) {
	if next != "" && !slices.Contains(in.next, next) {
		in.next = append(in.next, next)
	}
}

func (in *Installer) printNext() {
	if len(in.next) == 0 {
		return
	}
	fmt.Fprintln(in.Out, "\nnext:")
	for _, n := range in.next {
		fmt.Fprintln(in.Out, "  "+n)
	}
}

// Uninstall removes what install added. With engines named, it only
// unregisters those and keeps the binaries for the others.
func (in *Installer) Uninstall() error {
	st, found, err := loadState(in.Root)
	if err != nil {
		return err
	}
	if !found {
		in.warn("no %s: removing the files seccomp-install writes for %s; an imports entry it may have added to %s stays", statePath, in.Prefix, containerdConfig)
		st = in.guessState()
	}
	in.state = st
	in.Prefix = st.Prefix
	engines := slices.Clone(st.Engines)
	if in.EnginesNamed {
		engines = slices.DeleteFunc(engines, func(e string) bool { return !slices.Contains(in.Engines, e) })
		for _, e := range in.Engines {
			if !slices.Contains(engines, e) {
				in.warn("%s: not registered by seccomp-install, nothing to undo", e)
			}
		}
	}
	// The policy's checks first, so a refusal leaves everything in place.
	var steps []step
	for _, e := range engines {
		s, err := in.uninstallEngine(e)
		if err != nil {
			return err
		}
		steps = append(steps, s...)
	}
	full := len(engines) == len(st.Engines)
	unit := path.Join(unitDir, agentUnitName)
	if !full && slices.Contains(engines, "containerd") && st.Containerd != nil && st.Containerd.NRI && slices.Contains(st.Files[ownerBase], unit) {
		// The agent stays for the other engines, without its NRI plugin.
		nri := st.Containerd
		st.Containerd = nil
		steps = append(steps, step{path: unit, data: in.agentUnit(), mode: 0o644, note: "without " + nriAgentFlag, next: "systemctl daemon-reload && systemctl restart seccomp-agent.service"})
		st.Containerd = nri
	}
	if full {
		if slices.ContainsFunc(engines, st.runsShim) {
			in.warn("containers created through seccomp-shim call %s to be stopped and deleted: remove them before the binary goes (or install it again to stop them)", path.Join(st.Prefix, "bin", runtimeName))
		}
		steps = append(steps, in.wantsLinks()...)
		self := path.Join(st.Prefix, "bin", binaries[len(binaries)-1])
		for _, p := range st.Files[ownerBase] {
			if p != self {
				steps = append(steps, step{path: p, next: nextStopUnits})
			}
		}
		if slices.Contains(st.Files[ownerBase], self) {
			steps = append(steps, step{path: self})
		}
	}
	for _, s := range steps {
		if err := in.apply(s); err != nil {
			return err
		}
	}
	for _, e := range engines {
		in.removeDirs(st.Dirs[e])
		st.forget(e)
	}
	if full {
		in.removeDirs(st.Dirs[ownerBase])
		if err := in.apply(step{path: statePath}); err != nil {
			return err
		}
		in.say("keep", configPath, "the node's policy; remove it by hand if you want")
	} else if err := in.apply(step{path: statePath, data: st.encode(), mode: 0o644}); err != nil {
		return err
	}
	in.printNext()
	return nil
}

// guessState stands in for a lost install-state.json: every file install
// writes, for every engine.
func (in *Installer) guessState() *State {
	st := newState(in.Prefix)
	st.Engines = slices.Clone(allEngines)
	for _, b := range binaries {
		st.addFile(ownerBase, path.Join(in.Prefix, "bin", b))
	}
	for _, u := range units {
		st.addFile(ownerBase, path.Join(unitDir, u.name))
	}
	st.addFile("containerd", containerdDropIn)
	st.addFile("podman", podmanDropIn)
	st.addFile("podman", podmanHook)
	st.addFile("crio", crioDropIn)
	st.Docker = &DockerState{}
	return st
}

func (in *Installer) uninstallEngine(e string) ([]step, error) {
	next := map[string]string{"docker": "systemctl reload docker", "containerd": "systemctl restart containerd", "crio": "systemctl restart crio"}[e]
	var steps []step
	for _, p := range in.state.Files[e] {
		steps = append(steps, step{path: p, next: next})
	}
	switch e {
	case "docker":
		doc, exists, err := readRegular(in.host(dockerConfig))
		if err != nil || !exists {
			return nil, err
		}
		if dockerDefaultRuntime(doc) == runtimeName {
			return nil, fmt.Errorf("%s: default-runtime is %s; set it back (to runc) before uninstalling, or dockerd won't start", dockerConfig, runtimeName)
		}
		ds := DockerState{}
		if in.state.Docker != nil {
			ds = *in.state.Docker
		}
		out, err := removeDockerRuntime(doc, ds)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dockerConfig, err)
		}
		steps = append(steps, step{path: dockerConfig, data: out, mode: 0o644, edited: true, note: "runtimes." + runtimeName + " removed (\"runtimes\" stays, so a reload drops it)", next: next})
	case "containerd":
		v, err := loadContainerd(in.Root)
		if err != nil {
			return nil, err
		}
		if v.defaultRuntime() == runtimeName {
			return nil, fmt.Errorf("%s: default_runtime_name is %s; set it back before uninstalling, or containerd's CRI plugin won't start", containerdConfig, runtimeName)
		}
		if cs := in.state.Containerd; cs != nil && len(cs.Inserted) > 0 && v.exists {
			steps = append(steps, in.unimport(v, cs, next))
		}
	}
	return steps, nil
}

// unimport is the step that takes out of config.toml what install inserted
// (cs), or removes the config.toml install created.
func (in *Installer) unimport(v *ctrdView, cs *ContainerdState, next string) step {
	out, missing := removeImport(v.doc, *cs)
	for _, m := range missing {
		in.warn("containerd: %s no longer has %q where install put it; remove it by hand", containerdConfig, strings.TrimSpace(m))
	}
	if cs.CreatedConfig && len(bytes.TrimSpace(out)) == 0 {
		return step{path: containerdConfig, note: "install created it", next: next}
	}
	return step{path: containerdConfig, data: out, mode: 0o644, edited: true, note: "imports entry removed", next: next}
}

// wantsLinks are the links `systemctl enable` made to the units; left
// behind they would dangle.
func (in *Installer) wantsLinks() []step {
	var steps []step
	dirs, _ := filepath.Glob(in.host(path.Join(unitDir, "*.wants")))
	for _, d := range dirs {
		for _, u := range units {
			p := filepath.Join(d, u.name)
			if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
				rel, _ := filepath.Rel(in.Root, p)
				steps = append(steps, step{path: "/" + rel})
			}
		}
	}
	return steps
}

// removeDirs removes the directories install created, deepest first, if
// they are empty; anything someone else put there keeps them.
func (in *Installer) removeDirs(dirs []string) {
	for _, d := range slices.Backward(dirs) {
		if in.DryRun {
			continue
		}
		if err := os.Remove(in.host(d)); err == nil {
			in.say("remove", d+"/", "")
		}
	}
}
