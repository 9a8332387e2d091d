package install

import (
	"fmt"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The NRI path: on containerd 2.x the agent registers with containerd's NRI
// as a plugin (seccomp-agent --nri-socket) and applies the policy at
// CreateContainer; no runtime, no RuntimeClass.
const (
	nriPlugin = "io.containerd.nri.v1.nri"
	// nriSocket is NRI's default socket (nri pkg/adaptation DefaultSocketPath).
	nriSocket = "/var/run/nri/nri.sock"
	// nriName and nriIndex are the agent's NRI identity (nriplugin.Name and
	// Index, which install does not link: seccomp-shim links install);
	// required_plugins names nriName.
	nriName  = "seccomp-shim"
	nriIndex = "90"
	// nriTolerate is the annotation key install sets as the default
	// validator's tolerate_missing_plugins_annotation, the one NRI's docs
	// use: a pod carrying it "true" starts without the required plugins (the
	// NRI DaemonSet's own pod must).
	nriTolerate = "tolerate-missing-nri-plugins.noderesource.dev"
	// nriAgentFlag turns on the agent's NRI plugin.
	nriAgentFlag = "--nri-socket"
)

// nriMinimum is the first containerd release whose NRI hands plugins the
// container's seccomp policy (containerd#12768) besides applying their
// SetLinuxSeccompPolicy: older 2.x would run containers without the policy's
// keep/tighten, so auto leaves them on the runtime wrapper.
var nriMinimum = [2]int{2, 3}

// NRI modes (--nri).
const (
	NRIAuto = "auto" // NRI on containerd >= nriMinimum, the runtime elsewhere
	NRIOn   = "on"   // NRI; refused where containerd is known to be older than nriMinimum
	NRIOff  = "off"  // the runtime wrapper ("" means off too)
)

// ctrdVersion is what `containerd --version` says, of the binary under root.
type ctrdVersion struct {
	known        bool
	major, minor int
	text         string
}

var versionRE = regexp.MustCompile(`\sv?(\d+)\.(\d+)\.\d+\S*`)

// containerdVersion runs the node's containerd with --version. Under a
// --root without one (a DaemonSet's install container), the version is
// unknown and the config's version says what it can.
func containerdVersion(root string) ctrdVersion {
	for _, dir := range []string{"/usr/local/bin", "/usr/bin", "/usr/sbin", "/usr/local/sbin"} {
		p := filepath.Join(root, dir, "containerd")
		if !exists(p) {
			continue
		}
		out, err := exec.Command(p, "--version").Output()
		if err != nil {
			continue
		}
		return parseContainerdVersion(string(out))
	}
	return ctrdVersion{}
}

// parseContainerdVersion reads "containerd github.com/containerd/containerd/v2 v2.4.2 <commit>"
// (Debian's: "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1").
func parseContainerdVersion(out string) ctrdVersion {
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		return ctrdVersion{}
	}
	major, err1 := strconv.Atoi(m[1])
	minor, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil {
		return ctrdVersion{}
	}
	return ctrdVersion{known: true, major: major, minor: minor, text: strings.TrimSpace(m[0])}
}

func (cv ctrdVersion) atLeast(v [2]int) bool {
	return cv.major > v[0] || cv.major == v[0] && cv.minor >= v[1]
}

// useNRI decides between the NRI plugin and the runtime wrapper for
// containerd. An install already made keeps its way under auto: switching
// would strand the pods that use the other.
func (in *Installer) useNRI(v *ctrdView) (bool, error) {
	registered := slices.Contains(in.state.Engines, "containerd")
	wasNRI := registered && in.state.Containerd != nil && in.state.Containerd.NRI
	var cv ctrdVersion
	if in.NRI == NRIOn || in.NRI == NRIAuto && !registered {
		cv = containerdVersion(in.Root)
	}
	is2x := v.written == 3
	what := fmt.Sprintf("%s has version = %d", containerdConfig, v.written)
	if cv.known {
		is2x, what = cv.major >= 2, "containerd is "+cv.text
	}
	switch in.NRI {
	case "", NRIOff:
		if wasNRI {
			return false, fmt.Errorf("seccomp-shim is registered with containerd as an NRI plugin; run `seccomp-install uninstall --engines containerd` first to change to the runtime")
		}
		return false, nil
	case NRIOn:
		// The plugin refuses containerd before nriMinimum (nriplugin
		// Supported): registered there, it would never connect.
		if !is2x || cv.known && !cv.atLeast(nriMinimum) {
			return false, fmt.Errorf("--nri=on: %s; the NRI plugin registers only with containerd %d.%d or later (use --nri=off, the runtime)", what, nriMinimum[0], nriMinimum[1])
		}
		if registered && !wasNRI {
			return false, fmt.Errorf("seccomp-shim is registered with containerd as the runtime seccomp-shim; run `seccomp-install uninstall --engines containerd` first to change to the NRI plugin")
		}
		return true, nil
	case NRIAuto:
		if registered {
			return wasNRI, nil
		}
		switch {
		case cv.known && cv.atLeast(nriMinimum):
			return true, nil
		case is2x && cv.known:
			in.warn("containerd: %s: its NRI lacks what the plugin needs (%d.%d or later), so seccomp-shim is registered as a runtime", what, nriMinimum[0], nriMinimum[1])
		case is2x:
			in.warn("containerd: %s but its version is unknown (no containerd binary under %s): seccomp-shim is registered as a runtime; --nri=on registers the NRI plugin instead (containerd %d.%d or later)", what, in.Root, nriMinimum[0], nriMinimum[1])
		}
		return false, nil
	}
	return false, fmt.Errorf("--nri %q: want auto, on or off", in.NRI)
}

// nriDropIn is what containerd's config must gain for the plugin: nothing
// where NRI is on (containerd 2.x's default) and no required plugin is
// asked for. The socket is where the agent connects.
func (v *ctrdView) nriDropIn(required bool) (content map[string]any, socket string, warnings []string, err error) {
	nri, _ := lookup(v.plugins, nriPlugin)
	socket = nriSocket
	if s, _ := nri["socket_path"].(string); s != "" {
		socket = s
	}
	if dc, _ := nri["disable_connections"].(bool); dc {
		return nil, "", nil, fmt.Errorf("%s: [plugins.%q] disable_connections = true: containerd accepts no NRI plugin that it did not start itself; allow connections, or install with --nri=off (the runtime wrapper)", containerdConfig, nriPlugin)
	}
	section := map[string]any{}
	if off, _ := nri["disable"].(bool); off {
		section["disable"] = false
	}
	dv, _ := nri["default_validator"].(map[string]any)
	enabled, _ := dv["enable"].(bool)
	for _, k := range []string{"reject_runtime_default_seccomp_adjustment", "reject_unconfined_seccomp_adjustment", "reject_custom_seccomp_adjustment"} {
		if on, _ := dv[k].(bool); on && enabled {
			warnings = append(warnings, fmt.Sprintf("[plugins.%q.default_validator] %s = true: containers whose profile the policy changes are refused (not started unprotected); set it to false to let the plugin apply the policy", nriPlugin, k))
		}
	}
	if required {
		req := slices.Clone(asSlice(dv["required_plugins"]))
		tolerate, _ := dv["tolerate_missing_plugins_annotation"].(string)
		if !enabled || !slices.Contains(req, any(nriName)) || tolerate == "" {
			if !enabled && len(dv) > 0 {
				warnings = append(warnings, fmt.Sprintf("[plugins.%q.default_validator] was off: turning it on also enforces what else it says there (required_plugins %v, the reject_* settings)", nriPlugin, req))
			}
			if !slices.Contains(req, any(nriName)) {
				// The list is written whole: whether containerd appends or
				// replaces the array, the result is the same.
				req = append(req, nriName)
			}
			val := map[string]any{"enable": true, "required_plugins": req}
			if tolerate == "" {
				val["tolerate_missing_plugins_annotation"] = nriTolerate
			}
			section["default_validator"] = val
		}
	}
	if len(section) == 0 {
		return nil, socket, warnings, nil
	}
	return map[string]any{"version": v.version, "plugins": map[string]any{nriPlugin: section}}, socket, warnings, nil
}

const dropInHeaderNRI = `# Written by seccomp-install: lets the seccomp-shim NRI plugin (seccomp-agent
# --nri-socket) in. ` + "`seccomp-install uninstall`" + ` removes it. containerd reads it
# at start.
`

// installContainerdNRI registers the agent's NRI plugin: the agent's unit
// gets --nri-socket (units installs it), and containerd's config is touched
// only if NRI is off there or a required plugin is asked for.
func (in *Installer) installContainerdNRI(v *ctrdView) ([]step, error) {
	content, socket, warnings, err := v.nriDropIn(in.NRIRequired)
	if err != nil {
		return nil, err
	}
	for _, w := range append(v.warnings, warnings...) {
		in.warn("containerd: %s", w)
	}
	cs := in.state.Containerd
	if cs == nil || !cs.NRI {
		cs = &ContainerdState{NRI: true}
	}
	changed := cs.NRISocket != socket
	cs.NRISocket, cs.NRIRequired = socket, in.NRIRequired
	in.state.Containerd = cs
	if !in.Systemd && changed {
		// No unit to carry the flag: whatever runs the agent must.
		in.then("run seccomp-agent with " + nriAgentFlag + " " + socket + "   # its NRI plugin; no unit installed (--systemd=false)")
	}
	if content == nil {
		fmt.Fprintf(in.Out, "%-16s %s\n", "nri", fmt.Sprintf("containerd has NRI on (%s): the agent registers as plugin %s-%s; containerd's config stays as it is", socket, nriIndex, nriName))
		if !slices.Contains(in.state.Files["containerd"], containerdDropIn) {
			return nil, nil
		}
		// An earlier install with --nri-required wrote the drop-in: it goes,
		// and so does the imports entry naming it (containerd refuses to
		// start on an import that is missing).
		steps := []step{{path: containerdDropIn, note: "no longer needed", next: nextContainerd}}
		in.state.Files["containerd"] = slices.DeleteFunc(in.state.Files["containerd"], func(p string) bool { return p == containerdDropIn })
		if len(cs.Inserted) > 0 && v.exists {
			steps = append(steps, in.unimport(v, cs, nextContainerd))
			cs.Inserted, cs.CreatedConfig = nil, false
		}
		return steps, nil
	}
	data, err := renderDropIn(content, dropInHeaderNRI)
	if err != nil {
		return nil, err
	}
	note := "NRI on"
	if in.NRIRequired {
		note = "NRI, with " + nriName + " a required plugin"
	}
	steps := []step{{path: containerdDropIn, data: data, mode: 0o644, owner: "containerd", note: note, next: nextContainerd}}
	if !v.covered {
		out, ins, err := v.addImport()
		if err != nil {
			return nil, err
		}
		if len(cs.Inserted) == 0 {
			cs.CreatedConfig, cs.Inserted = ins.CreatedConfig, ins.Inserted
		}
		steps = append(steps, step{path: containerdConfig, data: out, mode: 0o644, owner: "containerd", edited: true, note: "imports " + containerdDropIn, next: nextContainerd})
	}
	return steps, nil
}

// agentUnit is the agent's unit, with its NRI plugin on when containerd is
// registered that way.
func (in *Installer) agentUnit() []byte {
	data := withPrefix(agentUnit, in.Prefix)
	cs := in.state.Containerd
	if cs == nil || !cs.NRI {
		return data
	}
	exec := "ExecStart=" + path.Join(in.Prefix, "bin", "seccomp-agent") + " "
	return []byte(strings.Replace(string(data), exec, exec+nriAgentFlag+" "+cs.NRISocket+" ", 1))
}

// nriRegistration is status's view of the NRI registration: containerd's
// config lets the plugin in (and requires it, if install was asked to), and
// the agent's unit connects to the socket the config names.
func (in *Installer) nriRegistration(v *ctrdView) []Registration {
	cs := in.state.Containerd
	content, socket, _, err := v.nriDropIn(cs.NRIRequired)
	if err != nil {
		return []Registration{{"error", "containerd", err.Error()}}
	}
	detail := fmt.Sprintf("NRI plugin %s-%s at %s", nriIndex, nriName, socket)
	if cs.NRIRequired {
		detail += ", required by NRI's default validator"
	}
	state := "ok"
	if socket != cs.NRISocket {
		state, detail = "differs", fmt.Sprintf("NRI: containerd's socket_path is %s, the agent connects to %s; run `seccomp-install install`", socket, cs.NRISocket)
	}
	regs := []Registration{{state, "containerd", detail}}
	if content == nil {
		return regs
	}
	want, err := renderDropIn(content, dropInHeaderNRI)
	if err != nil {
		return append(regs, Registration{"error", "containerd", err.Error()})
	}
	regs = append(regs, Registration{fileState(in.host(containerdDropIn), want), "containerd", containerdDropIn + " (NRI settings)"})
	if v.covered {
		return append(regs, Registration{"ok", "containerd", containerdConfig + " imports it"})
	}
	return append(regs, Registration{"missing", "containerd", containerdConfig + " does not import " + containerdDropIn})
}
