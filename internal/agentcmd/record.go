package agentcmd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/internal/atomicfile"
	"github.com/seccomp-shim/seccomp-shim/internal/cliapp"
	"github.com/seccomp-shim/seccomp-shim/internal/recording"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/urfave/cli/v2"
)

// recordCommand is `seccomp-agent record`: the recordings the agent wrote
// (docs/recording.md), as profiles.
func recordCommand(stdout, stderr io.Writer) *cli.Command {
	dirFlag := func() cli.Flag {
		return &cli.StringFlag{Name: "dir", Usage: "the recordings' directory (default: the config's [record] dir, else " + recording.DefaultDir + ")"}
	}
	configFlag := func() cli.Flag {
		return &cli.StringFlag{Name: "config", Usage: "the policy file, for [record] dir and profiles.dir; default $SECCOMP_SHIM_CONFIG or " + policy.DefaultConfigPath}
	}
	args := func(c *cli.Context, min, max int, usage string) error {
		if err := noServeFlags(c); err != nil {
			return err
		}
		if a := flagAfterArgs(c); a != "" {
			return cliapp.Usage(c, "flag %s after the arguments: put it before them (seccomp-agent record %s %s %s)", a, c.Command.Name, a, usage)
		}
		if n := c.NArg(); n < min || max >= 0 && n > max {
			return cliapp.Usage(c, "usage: seccomp-agent record %s %s", c.Command.Name, usage)
		}
		return nil
	}
	fail := func(err error) error {
		if _, said := err.(cli.ExitCoder); err == nil || said {
			return err
		}
		return cli.Exit(fmt.Sprintf("seccomp-agent record: %v", err), 1)
	}
	return &cli.Command{
		Name:      "record",
		Usage:     "list, print, merge, compare and install the profiles recorded from containers",
		UsageText: "seccomp-agent record list|show|merge|diff|install [command options] ARGUMENTS (seccomp-agent record COMMAND --help)",
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return cliapp.Usage(c, "unknown command %q", c.Args().First())
			}
			return cliapp.Usage(c, "no command given")
		},
		Subcommands: []*cli.Command{
			{Name: "list", Usage: "list the recordings", Flags: []cli.Flag{dirFlag(), configFlag()},
				Action: func(c *cli.Context) error {
					if err := args(c, 0, 0, ""); err != nil {
						return err
					}
					return fail(recordList(c, stdout, stderr))
				}},
			{Name: "show", Usage: "print a recording as the minimal profile that allows what it saw", ArgsUsage: "NAME|FILE",
				Flags: []cli.Flag{dirFlag(), configFlag(), &cli.BoolFlag{Name: "recording", Usage: "print the recording itself, not its profile"}},
				Action: func(c *cli.Context) error {
					if err := args(c, 1, 1, "NAME|FILE"); err != nil {
						return err
					}
					r, err := loadRecording(c, c.Args().First())
					if err != nil {
						return fail(err)
					}
					if c.Bool("recording") {
						data, err := r.Marshal()
						if err == nil {
							_, err = stdout.Write(data)
						}
						return fail(err)
					}
					data, err := profileOf(r, r.Name, stderr)
					if err == nil {
						_, err = stdout.Write(data)
					}
					return fail(err)
				}},
			{Name: "merge", Usage: "merge recordings (names or files) into the recording NAME, which keeps what it had", ArgsUsage: "NAME SOURCE...",
				Flags: []cli.Flag{dirFlag(), configFlag()},
				Action: func(c *cli.Context) error {
					if err := args(c, 2, -1, "NAME SOURCE..."); err != nil {
						return err
					}
					return fail(recordMerge(c, stdout))
				}},
			{Name: "diff", Usage: "compare a recording's profile with a profile (a name, as a rule names it, or a file)", ArgsUsage: "NAME|FILE PROFILE",
				Flags: []cli.Flag{dirFlag(), configFlag()},
				Action: func(c *cli.Context) error {
					if err := args(c, 2, 2, "NAME|FILE PROFILE"); err != nil {
						return err
					}
					return fail(recordDiff(c, stdout, stderr))
				}},
			{Name: "install", Usage: "write a recording's profile into profiles.dir as PROFILE (default: the recording's name), atomically", ArgsUsage: "NAME|FILE [PROFILE]",
				Flags: []cli.Flag{dirFlag(), configFlag(), &cli.BoolFlag{Name: "force", Usage: "replace a profile of that name"}},
				Action: func(c *cli.Context) error {
					if err := args(c, 1, 2, "NAME|FILE [PROFILE]"); err != nil {
						return err
					}
					return fail(recordInstall(c, stdout, stderr))
				}},
		},
	}
}

// config loads the policy file (--config, else the environment's or the
// default) the first time it is needed: only when a flag or argument
// leaves something to it.
// flagAfterArgs returns the first of c's arguments that is one of its
// command's flags, or "". urfave/cli stops at the first argument: a flag
// after it would be taken as an argument ("--force" as a profile's name).
func flagAfterArgs(c *cli.Context) string {
	for _, a := range c.Args().Slice() {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		for _, f := range c.Command.Flags {
			if strings.HasPrefix(a, "-") && slices.Contains(f.Names(), name) {
				return a
			}
		}
	}
	return ""
}

func config(c *cli.Context) (*policy.Config, error) {
	if path := c.String("config"); path != "" {
		return policy.LoadFile(path, true)
	}
	return policy.Load(os.Getenv)
}

// store is the recordings' directory: --dir, else the config's.
func store(c *cli.Context) (recording.Store, error) {
	if d := c.String("dir"); d != "" {
		return recording.Store{Dir: d}, nil
	}
	cfg, err := config(c)
	if err != nil {
		return recording.Store{}, err
	}
	return recording.Store{Dir: cfg.Record.Dir}, nil
}

// isFile tells a file argument from a name: names have no slash and no
// .json, which a file path given on purpose has.
func isFile(arg string) bool {
	return strings.Contains(arg, "/") || strings.HasSuffix(arg, ".json")
}

func loadRecording(c *cli.Context, arg string) (*recording.Recording, error) {
	if isFile(arg) {
		return recording.ReadFile(arg)
	}
	s, err := store(c)
	if err != nil {
		return nil, err
	}
	r, err := s.Load(arg)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("recording %q: no %s: the agent writes it when a container recorded under that name ends (record list shows the recordings there)", arg, s.Path(arg))
	}
	return r, err
}

// profileOf writes r's profile, named name, with the validator's warnings
// on stderr.
func profileOf(r *recording.Recording, name string, stderr io.Writer) ([]byte, error) {
	data, warnings, err := recording.ProfileJSON(r, name)
	for _, w := range warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	return data, err
}

func recordList(c *cli.Context, stdout, stderr io.Writer) error {
	s, err := store(c)
	if err != nil {
		return err
	}
	recs, errs := s.List()
	w := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tCONTAINERS\tARCHITECTURES\tSYSCALLS\tFIRST\tLAST")
	for _, r := range recs {
		var arches []string
		names := map[string]bool{}
		for a, x := range r.Architectures {
			arches = append(arches, strings.TrimPrefix(string(a), "SCMP_ARCH_"))
			for _, n := range x.Syscalls {
				names[n] = true
			}
		}
		slices.Sort(arches)
		dash := func(s string) string {
			if s == "" {
				return "-"
			}
			return s
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%s\t%s\n", r.Name, r.Containers, dash(strings.Join(arches, ",")), len(names), dash(r.First), dash(r.Last))
	}
	w.Flush()
	for _, err := range errs {
		fmt.Fprintln(stderr, "seccomp-agent record list:", err)
	}
	if len(errs) > 0 {
		return cli.Exit("", 1)
	}
	return nil
}

func recordMerge(c *cli.Context, stdout io.Writer) error {
	name := c.Args().First()
	if !policy.ValidName(name) {
		return fmt.Errorf("recording name %q: not a valid profile name (1-128 of [A-Za-z0-9._-], not starting with . _ or -)", name)
	}
	s, err := store(c)
	if err != nil {
		return err
	}
	sum := recording.New(name)
	for _, src := range c.Args().Tail() {
		r, err := loadRecording(c, src)
		if err != nil {
			return err
		}
		sum.Merge(r)
	}
	merged, err := s.Add(sum)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d containers recorded\n", s.Path(name), merged.Containers)
	return nil
}

func recordInstall(c *cli.Context, stdout, stderr io.Writer) error {
	r, err := loadRecording(c, c.Args().First())
	if err != nil {
		return err
	}
	name := r.Name
	if c.NArg() == 2 {
		name = c.Args().Get(1)
	}
	if !policy.ValidName(name) {
		return fmt.Errorf("profile name %q: not a valid profile name", name)
	}
	cfg, err := config(c)
	if err != nil {
		return err
	}
	data, err := profileOf(r, name, stderr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Profiles.Dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(cfg.Profiles.Dir, name+".json")
	check := func() error {
		if _, err := os.Lstat(path); err == nil && !c.Bool("force") {
			return fmt.Errorf("profile %s exists: --force replaces it", path)
		}
		return nil
	}
	if _, err := atomicfile.Write(path, data, atomicfile.Options{Mode: 0o644, Tag: "install", Check: check}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: profile %q installed from recording %q\n", path, name, r.Name)
	return nil
}

// recordDiff prints, for each syscall the two profiles treat differently,
// what each does with it.
func recordDiff(c *cli.Context, stdout, stderr io.Writer) error {
	r, err := loadRecording(c, c.Args().First())
	if err != nil {
		return err
	}
	data, err := profileOf(r, r.Name, stderr)
	if err != nil {
		return err
	}
	mine, err := resolve(policy.ParseProfile(r.Name, "recording "+r.Name, data))
	if err != nil {
		return err
	}
	other := c.Args().Get(1)
	var p *policy.Profile
	if isFile(other) {
		var b []byte
		if b, err = os.ReadFile(other); err == nil {
			p, err = policy.ParseProfile(other, other, b)
		}
	} else {
		var cfg *policy.Config
		if cfg, err = config(c); err == nil {
			p, err = policy.LoadProfile(cfg.Profiles.Dir, other)
		}
	}
	theirs, err := resolve(p, err)
	if err != nil {
		return err
	}
	if theirs == nil {
		theirs = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow} // unconfined
	}
	a, b := verdicts(mine), verdicts(theirs)
	var names []string
	for n := range a.byName {
		names = append(names, n)
	}
	for n := range b.byName {
		if _, ok := a.byName[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	w := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintf(w, "SYSCALL\tRECORDING %s\tPROFILE %s\n", r.Name, other)
	fmt.Fprintf(w, "(default)\t%s\t%s\n", a.def, b.def)
	differ := 0
	for _, n := range names {
		if va, vb := a.of(n), b.of(n); va != vb {
			fmt.Fprintf(w, "%s\t%s\t%s\n", n, va, vb)
			differ++
		}
	}
	w.Flush()
	fmt.Fprintf(stdout, "%d syscalls treated differently\n", differ)
	return nil
}

func resolve(p *policy.Profile, err error) (*specs.LinuxSeccomp, error) {
	if err != nil {
		return nil, err
	}
	return p.Resolve(nil)
}

// verdictTable says what a resolved profile does with each syscall it
// names, and with the rest.
type verdictTable struct {
	def    string
	byName map[string]string
}

func (t verdictTable) of(name string) string {
	if v, ok := t.byName[name]; ok {
		return v
	}
	return t.def + " (default)"
}

func verdicts(sc *specs.LinuxSeccomp) verdictTable {
	t := verdictTable{def: action(sc.DefaultAction, sc.DefaultErrnoRet), byName: map[string]string{}}
	conds := map[string][]string{}
	for _, s := range sc.Syscalls {
		v := action(s.Action, s.ErrnoRet)
		var cs []string
		for _, a := range s.Args {
			cs = append(cs, argString(a))
		}
		for _, n := range s.Names {
			if len(cs) == 0 {
				t.byName[n] = v
				continue
			}
			conds[n] = append(conds[n], v+" if "+strings.Join(cs, " && "))
		}
	}
	for n, cs := range conds {
		if _, outright := t.byName[n]; !outright {
			t.byName[n] = strings.Join(cs, "; ") + "; else " + t.def
		}
	}
	return t
}

func action(a specs.LinuxSeccompAction, errno *uint) string {
	s := strings.ToLower(strings.TrimPrefix(string(a), "SCMP_ACT_"))
	if errno != nil {
		s += fmt.Sprintf(" %d", *errno)
	} else if a == specs.ActErrno {
		s += " 1"
	}
	return s
}

func argString(a specs.LinuxSeccompArg) string {
	ops := map[specs.LinuxSeccompOperator]string{
		specs.OpEqualTo: "==", specs.OpNotEqual: "!=", specs.OpLessThan: "<", specs.OpLessEqual: "<=",
		specs.OpGreaterThan: ">", specs.OpGreaterEqual: ">=",
	}
	if a.Op == specs.OpMaskedEqual {
		return fmt.Sprintf("arg%d&%#x==%#x", a.Index, a.Value, a.ValueTwo)
	}
	if op, ok := ops[a.Op]; ok {
		return fmt.Sprintf("arg%d%s%d", a.Index, op, a.Value)
	}
	return fmt.Sprintf("arg%d %s %d", a.Index, a.Op, a.Value)
}
