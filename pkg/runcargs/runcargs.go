// Package runcargs parses the command line of a runc-compatible OCI runtime
// so that a wrapper can find the subcommand, the global flags and the bundle
// directory, and then pass the original argv on unchanged.
//
// The wrapper and runc must agree on which config.json runc is going to read,
// so this follows runc 1.1's own parser (every 1.1.x release pins urfave/cli
// v1.22.1, on top of Go's flag package) rather than getopt conventions:
//
//   - Global flags end at "--" or at the first non-flag token, which is the
//     subcommand.
//   - Before parsing its own flags, every subcommand except exec and ps moves
//     each dash token, plus the non-dash token right after it, in front of
//     the other tokens. So "create ID --bundle B" uses bundle B, and in
//     "create A B --bundle" the bundle is A and the container is B.
//   - A value flag takes the next token whatever it looks like; a boolean
//     flag only takes a value as "--flag=value".
//   - "-name" and "--name" are the same flag, for long and short names alike.
//
// runc 1.2 moved to urfave/cli v1.22.14, which reorders only the flags it
// knows and lets a value flag take a value starting with "-". The two agree
// on what container engines generate, flags first, but not on odd lines such
// as "create -d c1 -b", which runc 1.1 refuses (create has no -d) and runc
// 1.2 runs with the bundle "-d".
//
// Parse is lenient: runc reports its own usage errors, and the wrapper must
// never reject a command line that runc would accept.
package runcargs

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrUsage is wrapped by the errors Parse returns for command lines that
// runc would certainly refuse too.
var ErrUsage = errors.New("invalid runtime command line")

// Args is a parsed runtime command line.
type Args struct {
	Global               []string // the global flag tokens as given, before the subcommand
	Root, Log, LogFormat string   // values of --root, --log, --log-format ("" if absent)
	Command              string   // subcommand, "" if none (e.g. only --version)
	CommandArgs          []string // every token after the subcommand, as given
	Bundle               string   // absolute bundle path for create/run/restore ("" for other commands)
	ID                   string   // the container id: first positional after the command's flags, "" if none

	// printOnly is set when --help or --version makes runc print and exit
	// before the subcommand runs.
	printOnly bool
}

// flagTable maps each flag name, without dashes, to whether it takes a value.
type flagTable map[string]bool

func table(values, bools string) flagTable {
	// urfave/cli adds --help/-h to the app and to every subcommand.
	t := flagTable{"help": false, "h": false}
	for _, name := range strings.Fields(values) {
		t[name] = true
	}
	for _, name := range strings.Fields(bools) {
		t[name] = false
	}
	return t
}

// --cgroup-manager and --log-level are crun's; runc refuses them anyway, so
// knowing them can only make a crun command line parse right.
var globalFlags = table("root log log-format criu rootless cgroup-manager log-level",
	"debug systemd-cgroup version v")

// The flags of runc 1.1's subcommands. Booleans matter as much as value
// flags: an unknown flag is guessed to take a value, which for --force or
// --detach would swallow the container id. --pidfd-socket is runc 1.2's and
// --config/-f and create's --no-subreaper are crun's, harmless for the same
// reason as crun's global flags.
const (
	createValues = "bundle b console-socket pid-file preserve-fds pidfd-socket config f"
	createBools  = "no-pivot no-new-keyring no-subreaper"
)

// commandFlags holds each command's value flags, then its booleans. Only the
// command at hand gets its flagTable: building them all at init cost every
// container start 60 us.
var commandFlags = map[string][2]string{
	"checkpoint": {"image-path work-path parent-path status-fd page-server manage-cgroups-mode empty-ns",
		"leave-running tcp-established ext-unix-sk shell-job lazy-pages file-locks pre-dump auto-dedup"},
	"create": {createValues, createBools},
	"delete": {"", "force f"},
	"events": {"interval", "stats"},
	"exec": {"console-socket pidfd-socket cwd env e user u additional-gids g process p pid-file process-label apparmor cap c preserve-fds cgroup",
		"tty t detach d no-new-privs ignore-paused"},
	"features": {"", ""},
	"help":     {"", ""},
	"init":     {"", ""},
	"kill":     {"", "all a"},
	"list":     {"format f", "quiet q"},
	"pause":    {"", ""},
	"ps":       {"format f", ""},
	"restore": {"console-socket image-path work-path manage-cgroups-mode bundle b pid-file empty-ns lsm-profile lsm-mount-context",
		"tcp-established ext-unix-sk shell-job file-locks detach d no-subreaper no-pivot auto-dedup lazy-pages"},
	"resume": {"", ""},
	"run":    {createValues, createBools + " detach d keep no-subreaper"},
	"spec":   {"bundle b", "rootless"},
	"start":  {"", ""},
	"state":  {"", ""},
	"update": {"resources r blkio-weight cpu-period cpu-quota cpu-burst cpu-share cpu-rt-period cpu-rt-runtime cpuset-cpus cpuset-mems kernel-memory kernel-memory-tcp memory cpu-idle memory-reservation memory-swap pids-limit l3-cache-schema mem-bw-schema", ""},
}

// Parse parses argv, which must not include argv[0]. cwd is the directory
// the runtime runs in; a relative or missing --bundle is resolved against it.
func Parse(argv []string, cwd string) (*Args, error) {
	a := &Args{}
	// Go's flag package keeps -h and --help apart, and urfave shows help if
	// either is true; mixing them is a runc usage error, so one bool will do.
	var help, version, commandHelp bool
	n, err := scan(argv, globalFlags, true, func(name, value string) {
		switch name {
		case "root":
			a.Root = value
		case "log":
			a.Log = value
		case "log-format":
			a.LogFormat = value
		case "help", "h":
			help = isTrue(value)
		case "version", "v":
			version = isTrue(value)
		}
	})
	if err != nil {
		return nil, err
	}
	a.printOnly = help || version
	a.Global = slices.Clone(argv[:n])
	if n == len(argv) {
		return a, nil
	}
	a.Command, a.CommandArgs = argv[n], slices.Clone(argv[n+1:])

	args := a.CommandArgs
	// exec and ps set urfave's SkipArgReorder, because whatever follows the
	// container id belongs to the process they run.
	if a.Command != "exec" && a.Command != "ps" {
		args = reorder(args)
	}
	bundle, bundleSet, config := "", false, ""
	var known flagTable // none for a command runc doesn't have
	if f, ok := commandFlags[a.Command]; ok {
		known = table(f[0], f[1])
	}
	n, err = scan(args, known, false, func(name, value string) {
		switch name {
		case "bundle", "b":
			bundle, bundleSet = value, true
		case "config", "f":
			config = value
		case "help", "h":
			commandHelp = isTrue(value)
		}
	})
	switch {
	case err != nil && a.printOnly:
		// runc prints its help or version before it looks at these flags.
		return a, nil
	case err != nil:
		return nil, err
	}
	a.printOnly = a.printOnly || commandHelp
	if n < len(args) {
		a.ID = args[n]
	}
	if a.ModifiesBundle() {
		if a.Bundle, err = bundlePath(bundle, bundleSet, cwd); err != nil {
			return nil, err
		}
		// crun's --config names the file it reads instead of the bundle's
		// config.json: a policy applied to config.json would not reach it.
		if config != "" && filepath.Clean(config) != "config.json" {
			return nil, fmt.Errorf("%w: %s --config %s: only the bundle's config.json gets the policy", ErrUsage, a.Command, config)
		}
	}
	return a, nil
}

// ModifiesBundle reports whether runc is going to load the bundle's
// config.json: true for create, run and restore, unless --help or --version
// makes runc print and exit first.
func (a *Args) ModifiesBundle() bool {
	switch a.Command {
	case "create", "run", "restore":
		return !a.printOnly
	}
	return false
}

// scan parses flags the way Go's flag package does and returns the index of
// the first positional token. Unlike runc it accepts unknown flags, because
// they may belong to another runtime, and guesses that "--x v" gives v to
// --x unless v looks like a flag or, at the top level, names a subcommand.
func scan(args []string, known flagTable, top bool, set func(name, value string)) (int, error) {
	for i := 0; i < len(args); i++ {
		tok := args[i]
		if tok == "--" {
			return i + 1, nil
		}
		if len(tok) < 2 || tok[0] != '-' {
			return i, nil
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(tok[1:], "-"), "=")
		takesValue, ok := known[name]
		switch {
		case ok && takesValue && !hasValue:
			if i+1 == len(args) {
				return 0, fmt.Errorf("%w: %s needs a value", ErrUsage, tok)
			}
			i++
			value = args[i]
		case ok && !hasValue:
			value = "true"
		case !ok && !hasValue && i+1 < len(args):
			next := args[i+1]
			_, isCommand := commandFlags[next]
			if !strings.HasPrefix(next, "-") && !(top && isCommand) {
				i++
			}
		}
		if ok {
			set(name, value)
		}
	}
	return len(args), nil
}

// reorder is urfave/cli v1.22.1's reorderArgs, which runc 1.1 pins. It looks
// at no flag definitions, so the token after a boolean or unknown flag moves
// along with it as if it were the flag's value.
func reorder(args []string) []string {
	var flags, rest []string
	takeValue := false
	for i, tok := range args {
		if tok == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if takeValue && !strings.HasPrefix(tok, "-") {
			flags = append(flags, tok)
			takeValue = false
			continue
		}
		takeValue = false
		if tok != "-" && strings.HasPrefix(tok, "-") {
			flags = append(flags, tok)
			takeValue = !strings.Contains(tok, "=")
		} else {
			rest = append(rest, tok)
		}
	}
	return append(flags, rest...)
}

func bundlePath(bundle string, set bool, cwd string) (string, error) {
	if set && bundle == "" {
		return "", fmt.Errorf("%w: empty bundle", ErrUsage)
	}
	p := bundle
	if !filepath.IsAbs(p) {
		if !filepath.IsAbs(cwd) {
			return "", fmt.Errorf("runcargs: working directory %q is not absolute", cwd)
		}
		p = cwd + "/" + p
	}
	// filepath.Clean removes "dir/.." without looking at dir, but the kernel
	// follows dir first if it is a symlink; runc chdirs to the path as given.
	if !slices.Contains(strings.Split(p, "/"), "..") {
		p = filepath.Clean(p)
	}
	return p, nil
}

func isTrue(value string) bool {
	b, err := strconv.ParseBool(value)
	return err == nil && b
}
