package install

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/seccomp-shim/seccomp-shim/internal/cliapp"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/urfave/cli/v2"
)

// globalFlags are the flags every command takes, before or after its name:
// a fresh set each time, as urfave/cli records on a flag whether it was set.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "root", Value: "/", Usage: "the node's root directory; every path is taken under it"},
		&cli.StringFlag{Name: "prefix", Value: "/usr/local", Usage: "install the binaries to PREFIX/bin"},
		&cli.StringFlag{Name: "engines", Value: "auto", Usage: "docker,containerd,podman,crio, or auto: those whose config or binary is under --root"},
		&cli.StringFlag{Name: "bin", Usage: "the directory holding the binaries to install (default: this executable's)"},
		&cli.BoolFlag{Name: "dry-run", Usage: "say what would change, change nothing"},
		&cli.BoolFlag{Name: "systemd", Value: true, Usage: "install the agent's systemd units (false in a DaemonSet, which runs the agent itself)"},
	}
}

// Main runs seccomp-install with args (os.Args[1:]) and returns the exit
// code. extra are more commands (package kube's, kept out of this package so
// that seccomp-shim, which links it for its check, doesn't link client-go).
func Main(args []string, stdout, stderr io.Writer, extra ...*cli.Command) int {
	app := cliapp.New("seccomp-install", "install seccomp-shim on a node and register it with its container engines", stdout, stderr)
	app.Flags = globalFlags()
	command := func(name, usage string, flags []cli.Flag, do func(*cli.Context, *Installer) error) *cli.Command {
		return &cli.Command{Name: name, Usage: usage, Flags: append(globalFlags(), flags...), Action: func(c *cli.Context) error {
			if err := cliapp.NoArgs(c); err != nil {
				return err
			}
			in, err := installer(c, stdout)
			if err != nil {
				return err
			}
			return do(c, in)
		}}
	}
	app.Commands = []*cli.Command{
		command("install", "copy the binaries to PREFIX/bin, write the policy (if there is none), the agent's systemd units, and register the runtime seccomp-shim with each engine; running it again changes nothing", []cli.Flag{
			&cli.BoolFlag{Name: "restart-containerd", Usage: "if containerd's files changed, restart it through the host's systemd (from a pod with hostPID, CAP_SYS_CHROOT and CAP_SYS_PTRACE)"},
			&cli.StringFlag{Name: "nri", Value: NRIAuto, Usage: "containerd: on = the agent registers as an NRI plugin (containerd 2.3 or later), off = the runtime seccomp-shim, auto = NRI on containerd 2.3 or later and the runtime elsewhere (an install keeps its way)"},
			&cli.BoolFlag{Name: "nri-required", Usage: "with NRI: make seccomp-shim a plugin NRI's default validator requires (required_plugins), so no container is created while the agent is away"},
		}, func(c *cli.Context, in *Installer) error {
			if len(in.Engines) == 0 {
				fmt.Fprintln(stdout, "no container engine found under", in.Root, "(name them with --engines)")
			}
			in.RestartContainerd = c.Bool("restart-containerd")
			in.NRI, in.NRIRequired = c.String("nri"), c.Bool("nri-required")
			if !slices.Contains([]string{NRIAuto, NRIOn, NRIOff}, in.NRI) {
				return cliapp.Usage(c, "--nri %q: want auto, on or off", in.NRI)
			}
			return in.Install()
		}),
		command("uninstall", "remove what install added (the policy stays)", nil,
			func(_ *cli.Context, in *Installer) error { return in.Uninstall() }),
		command("refresh", "rewrite containerd's drop-in from config.toml as it is now: containerd 1.6/1.7 use the drop-in's copy of the CRI section, so edits to config.toml need this (and a containerd restart); running it again changes nothing", nil,
			func(_ *cli.Context, in *Installer) error { return in.Refresh() }),
		command("status", "show what is installed; exits 1 if something is missing or stale", nil,
			func(_ *cli.Context, in *Installer) error {
				ok, err := in.Status()
				if err == nil && !ok {
					return cli.Exit("", 1)
				}
				return err
			}),
		command("config", "replace the policy with --from FILE once it validates (for a ConfigMap); with --watch, keep doing so whenever FILE changes", []cli.Flag{
			&cli.StringFlag{Name: "from", Usage: "the policy file to install"},
			&cli.DurationFlag{Name: "watch", Usage: "check --from this often and install it when it changed"},
		}, func(c *cli.Context, in *Installer) error {
			if c.String("from") == "" {
				return cliapp.Usage(c, "config needs --from FILE")
			}
			return in.Config(c.String("from"), c.Duration("watch"), stderr)
		}),
	}
	app.Commands = append(app.Commands, extra...)
	return cliapp.Run(app, args)
}

// installer makes the Installer the command line describes.
func installer(c *cli.Context, stdout io.Writer) (*Installer, error) {
	flag := func(name string) *cli.Context { return cliapp.Lookup(c, name) }
	in := &Installer{
		Root: flag("root").String("root"), Prefix: filepath.Clean(flag("prefix").String("prefix")), BinDir: flag("bin").String("bin"),
		DryRun: flag("dry-run").Bool("dry-run"), Systemd: flag("systemd").Bool("systemd"), Out: stdout,
	}
	if !filepath.IsAbs(in.Root) || !filepath.IsAbs(in.Prefix) {
		return nil, cliapp.Usage(c, "--root and --prefix must be absolute")
	}
	if in.BinDir == "" {
		exe, err := os.Executable()
		if err == nil {
			exe, err = filepath.EvalSymlinks(exe)
		}
		if err != nil {
			return nil, fmt.Errorf("finding the binaries: %w; use --bin", err)
		}
		in.BinDir = filepath.Dir(exe)
	}
	engines := flag("engines").String("engines")
	if engines == "auto" {
		in.Engines = Detect(in.Root)
		return in, nil
	}
	for _, e := range strings.Split(engines, ",") {
		e = strings.TrimSpace(e)
		if !slices.Contains(allEngines, e) {
			return nil, cliapp.Usage(c, "unknown engine %q (know %s, or auto)", e, strings.Join(allEngines, ", "))
		}
		if !slices.Contains(in.Engines, e) {
			in.Engines = append(in.Engines, e)
		}
	}
	in.EnginesNamed = true
	return in, nil
}

// Config installs the policy file from, which must validate: the shim would
// refuse every container under a broken one. With watch, it keeps the node's
// file in step with from (a ConfigMap volume, which Kubernetes updates in
// place), and a bad version is reported and skipped, never installed.
func (in *Installer) Config(from string, watch time.Duration, stderr io.Writer) error {
	var last []byte
	reported := ""
	for {
		data, err := os.ReadFile(from)
		if err == nil && !bytes.Equal(data, last) {
			if _, err = policy.ParseConfig(from, data); err == nil {
				in.state = newState(in.Prefix)
				err = in.apply(step{path: configPath, data: data, mode: 0o644, note: "from " + from})
			}
			if err == nil {
				last = data
			}
		}
		if watch <= 0 {
			return err
		}
		// Report a bad file once, not every tick.
		if err != nil && err.Error() != reported {
			fmt.Fprintf(stderr, "seccomp-install: %v; the node keeps its current policy\n", err)
		}
		reported = ""
		if err != nil {
			reported = err.Error()
		}
		time.Sleep(watch)
	}
}
