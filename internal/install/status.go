package install

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"slices"
)

// Status prints what is installed, one line per item, and returns whether
// everything it looked at is as install would leave it.
func (in *Installer) Status() (bool, error) {
	st, found, err := loadState(in.Root)
	if err != nil {
		return false, err
	}
	ok := true
	line := func(state, what, detail string) {
		if state != "ok" {
			ok = false
		}
		fmt.Fprintf(in.Out, "%-8s %-11s %s\n", state, what, detail)
	}
	engines := in.Engines
	in.state = st
	if !found {
		in.state = newState(in.Prefix)
	}
	if found {
		in.Prefix = st.Prefix
		fmt.Fprintf(in.Out, "installed with --prefix %s for: %v (%s)\n", st.Prefix, st.Engines, statePath)
		if !in.EnginesNamed {
			engines = st.Engines
		}
	} else {
		fmt.Fprintf(in.Out, "not installed (no %s)\n", statePath)
	}
	for _, b := range binaries {
		p := path.Join(in.Prefix, "bin", b)
		state := "missing"
		if exists(in.host(p)) {
			state = "ok"
			if src, err := os.ReadFile(path.Join(in.BinDir, b)); err == nil {
				if cur, err := os.ReadFile(in.host(p)); err == nil && !bytes.Equal(src, cur) {
					state = "differs"
					p += " (from " + path.Join(in.BinDir, b) + ")"
				}
			}
		}
		line(state, "binary", p)
	}
	if exists(in.host(configPath)) {
		line("ok", "policy", configPath)
	} else {
		line("missing", "policy", configPath+" (the built-in defaults apply)")
	}
	// A DaemonSet installs with --systemd=false: the record says whether
	// units belong to this install.
	if in.Systemd && (!found || slices.Contains(st.Files[ownerBase], path.Join(unitDir, units[0].name))) {
		for _, u := range units {
			p := path.Join(unitDir, u.name)
			want := withPrefix(u.data, in.Prefix)
			if u.name == agentUnitName {
				want = in.agentUnit()
			}
			line(fileState(in.host(p), want), "unit", p)
		}
	}
	for _, r := range in.registrations(engines) {
		line(r.State, r.Engine, r.Detail)
	}
	return ok, nil
}

// Registration is how one engine is registered, one line of status.
type Registration struct {
	State  string // ok, missing, differs, stale or error
	Engine string
	Detail string
}

// Registrations reports how the container engines under root are
// registered: those install-state.json names and those Detect finds.
// seccomp-shim check shows it.
func Registrations(root string) ([]Registration, error) {
	st, found, err := loadState(root)
	if err != nil {
		return nil, err
	}
	in := &Installer{Root: root, Prefix: examplePrefix, state: st}
	engines := Detect(root)
	if found {
		in.Prefix, engines = st.Prefix, append(engines, st.Engines...)
	} else {
		in.state = newState(in.Prefix)
	}
	return in.registrations(engines), nil
}

func (in *Installer) registrations(engines []string) []Registration {
	var out []Registration
	line := func(state, e, detail string) { out = append(out, Registration{state, e, detail}) }
	for _, e := range allEngines {
		if !slices.Contains(engines, e) {
			continue
		}
		switch e {
		case "docker":
			doc, exists, err := readRegular(in.host(dockerConfig))
			switch p, reg := dockerRegistered(doc); {
			case err != nil:
				line("error", e, err.Error())
			case !exists || !reg:
				line("missing", e, dockerConfig+": no runtimes."+runtimeName)
			case p != in.shim():
				line("differs", e, fmt.Sprintf("%s: runtimes.%s.path is %s, not %s", dockerConfig, runtimeName, p, in.shim()))
			default:
				line("ok", e, dockerConfig+": runtimes."+runtimeName+" -> "+p)
			}
		case "containerd":
			v, err := loadContainerd(in.Root)
			if err != nil {
				line("error", e, err.Error())
				continue
			}
			if cs := in.state.Containerd; cs != nil && cs.NRI {
				out = append(out, in.nriRegistration(v)...)
				continue
			}
			content, _ := v.dropIn(in.shim())
			want, err := renderDropIn(content, runtimeHeader(content))
			if err != nil {
				line("error", e, err.Error())
				continue
			}
			switch s := fileState(in.host(containerdDropIn), want); {
			case s == "differs" && v.version == 2:
				line("stale", e, containerdDropIn+": config.toml's CRI section changed since install, and this copy of it hides the change from containerd 1.6/1.7; run `seccomp-install refresh`, then restart containerd")
			default:
				line(s, e, fmt.Sprintf("%s (config version %d)", containerdDropIn, v.version))
			}
			if v.covered {
				line("ok", e, containerdConfig+" imports it")
			} else {
				line("missing", e, containerdConfig+" does not import "+containerdDropIn)
			}
		case "podman":
			line(fileState(in.host(podmanDropIn), podmanConf(in.shim())), e, podmanDropIn)
			line(fileState(in.host(podmanHook), withPrefix(hookJSON, in.Prefix)), e, podmanHook)
		case "crio":
			line(fileState(in.host(crioDropIn), crioConf(in.shim())), e, crioDropIn)
		}
	}
	return out
}

func fileState(p string, want []byte) string {
	cur, exists, err := readRegular(p)
	switch {
	case err != nil:
		return "error"
	case !exists:
		return "missing"
	case !bytes.Equal(cur, want):
		return "differs"
	}
	return "ok"
}
