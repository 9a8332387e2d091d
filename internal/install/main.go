package install

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
)

const usage = `usage: seccomp-install [flags] install|uninstall|status
       seccomp-install [--root DIR] [--dry-run] config --from FILE [--watch DURATION]

install    copy the binaries to PREFIX/bin, write the policy (if there is
           none), the agent's systemd units, and register the runtime
           seccomp-shim with each engine; running it again changes nothing
uninstall  remove what install added (the policy stays)
status     show what is installed; exits 1 if something is missing or stale
config     replace the policy with FILE once it validates (for a ConfigMap);
           with --watch, keep doing so whenever FILE changes

flags:
`

// Main runs seccomp-install with args (os.Args[1:]) and returns the exit
// code.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seccomp-install", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	root := fs.String("root", "/", "the node's root directory; every path is taken under it")
	prefix := fs.String("prefix", "/usr/local", "install the binaries to PREFIX/bin")
	engines := fs.String("engines", "auto", "docker,containerd,podman,crio, or auto: those whose config or binary is under --root")
	bin := fs.String("bin", "", "the directory holding the binaries to install (default: this executable's)")
	dryRun := fs.Bool("dry-run", false, "say what would change, change nothing")
	systemd := fs.Bool("systemd", true, "install the agent's systemd units (false in a DaemonSet, which runs the agent itself)")
	from := fs.String("from", "", "config: the policy file to install")
	watch := fs.Duration("watch", 0, "config: check --from this often and install it when it changed")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cmd := fs.Arg(0)
	// Flags may follow the command too.
	if err := fs.Parse(fs.Args()[min(1, fs.NArg()):]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "seccomp-install: unexpected %q\n", fs.Arg(0))
		return 2
	}
	in := &Installer{Root: *root, Prefix: filepath.Clean(*prefix), BinDir: *bin, DryRun: *dryRun, Systemd: *systemd, Out: stdout}
	if !filepath.IsAbs(in.Root) || !filepath.IsAbs(in.Prefix) {
		fmt.Fprintln(stderr, "seccomp-install: --root and --prefix must be absolute")
		return 2
	}
	if in.BinDir == "" {
		exe, err := os.Executable()
		if err == nil {
			exe, err = filepath.EvalSymlinks(exe)
		}
		if err != nil {
			fmt.Fprintf(stderr, "seccomp-install: finding the binaries: %v; use --bin\n", err)
			return 1
		}
		in.BinDir = filepath.Dir(exe)
	}
	if *engines == "auto" {
		in.Engines = Detect(in.Root)
	} else {
		for _, e := range strings.Split(*engines, ",") {
			e = strings.TrimSpace(e)
			if !slices.Contains(allEngines, e) {
				fmt.Fprintf(stderr, "seccomp-install: unknown engine %q (know %s, or auto)\n", e, strings.Join(allEngines, ", "))
				return 2
			}
			if !slices.Contains(in.Engines, e) {
				in.Engines = append(in.Engines, e)
			}
		}
		in.EnginesNamed = true
	}
	var err error
	switch cmd {
	case "install":
		if len(in.Engines) == 0 {
			fmt.Fprintln(stdout, "no container engine found under", in.Root, "(name them with --engines)")
		}
		err = in.Install()
	case "uninstall":
		err = in.Uninstall()
	case "status":
		var ok bool
		ok, err = in.Status()
		if err == nil && !ok {
			return 1
		}
	case "config":
		if *from == "" {
			fmt.Fprintln(stderr, "seccomp-install: config needs --from FILE")
			return 2
		}
		err = in.Config(*from, *watch, stderr)
	case "":
		fs.Usage()
		return 2
	default:
		fmt.Fprintf(stderr, "seccomp-install: unknown command %q\n", cmd)
		fs.Usage()
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "seccomp-install: %v\n", err)
		return 1
	}
	return 0
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
