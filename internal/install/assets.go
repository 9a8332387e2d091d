package install

import (
	_ "embed"
	"path"
	"strings"
)

// go:embed can't reach examples/, so the files are copied here;
// TestAssetsMatchExamples keeps the copies identical to the originals.
var (
	//go:embed assets/config.toml
	defaultConfig []byte
	//go:embed assets/seccomp-agent-holder.service
	holderUnit []byte
	//go:embed assets/seccomp-agent.service
	agentUnit []byte
	//go:embed assets/seccomp-shim.json
	hookJSON []byte
)

const (
	runtimeName    = "seccomp-shim"
	agentUnitName  = "seccomp-agent.service"
	podAnnotations = "seccomp-shim.io/*"
	profileAnno    = "seccomp-shim.io/profile"

	confDir     = "/etc/seccomp-shim"
	configPath  = confDir + "/config.toml"
	profilesDir = confDir + "/profiles"
	statePath   = confDir + "/install-state.json"
	unitDir     = "/etc/systemd/system"
	logDir      = "/var/log/seccomp-shim"

	podmanDropIn = "/etc/containers/containers.conf.d/seccomp-shim.conf"
	podmanHook   = "/usr/share/containers/oci/hooks.d/seccomp-shim.json"
	crioDropIn   = "/etc/crio/crio.conf.d/50-seccomp-shim.conf"

	// The examples name the binaries where `make install` puts them.
	examplePrefix = "/usr/local"
)

// binaries are installed in PREFIX/bin. seccomp-install is among them, so
// status and uninstall run without the build tree; it is last, and uninstall
// removes it last.
var binaries = []string{"seccomp-shim", "seccomp-hook", "seccomp-agent", "seccomp-install"}

var units = []struct {
	name string
	data []byte
}{
	{"seccomp-agent-holder.service", holderUnit},
	{agentUnitName, agentUnit},
}

// withPrefix points an example file's binaries at prefix/bin. With the
// default prefix the file is the example, byte for byte.
func withPrefix(data []byte, prefix string) []byte {
	if prefix == examplePrefix {
		return data
	}
	return []byte(strings.ReplaceAll(string(data), examplePrefix+"/bin/", path.Join(prefix, "bin")+"/"))
}

func podmanConf(shim string) []byte {
	return []byte(`# Written by seccomp-install: lets podman run containers with
# ` + "`podman run --runtime seccomp-shim`" + `. ` + "`seccomp-install uninstall`" + ` removes it.
[engine.runtimes]
` + runtimeName + ` = [` + tomlString(shim) + `]
`)
}

func crioConf(shim string) []byte {
	return []byte(`# Written by seccomp-install: the CRI-O runtime handler seccomp-shim, for a
# RuntimeClass with handler: seccomp-shim. ` + "`seccomp-install uninstall`" + ` removes it.
[crio.runtime.runtimes.` + runtimeName + `]
runtime_path = ` + tomlString(shim) + `
runtime_type = "oci"
# A pod may ask for one of the profiles its rule allows with this annotation.
allowed_annotations = [` + tomlString(profileAnno) + `]
`)
}
