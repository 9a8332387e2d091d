// Package cliapp sets up github.com/urfave/cli/v2 the same way for every
// seccomp-shim binary, so they all keep the same rules: an unknown command,
// argument or flag exits 2 after the usage on stderr; --help exits 0;
// the help lists the subcommands; --version prints the binary's own version.
package cliapp

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"
)

// Version is this build's version: the main module's, which the go command
// takes from the VCS (a tag, or a pseudo-version of the commit).
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && !strings.Contains(v, s.Value[:min(12, len(s.Value))]) {
			v += " commit " + s.Value
		}
	}
	return v
}

// New returns an App that writes to stdout and stderr and never exits the
// process itself: Run returns the exit code.
func New(name, usage string, stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name: name, Usage: usage, Version: Version(),
		Writer: stdout, ErrWriter: stderr,
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

// Run runs app with args (os.Args[1:], without the program name) and
// returns the exit code: 0; 2 for a command line it refuses; an error's
// cli.Exit code, else 1. Errors are printed once, after the app's name.
func Run(app *cli.App, args []string) int {
	app.OnUsageError = usageError
	if app.Action == nil {
		app.Action = func(c *cli.Context) error {
			if err := NoArgs(c); err != nil {
				return err
			}
			return Usage(c, "no command given")
		}
	}
	var prepare func([]*cli.Command)
	prepare = func(cmds []*cli.Command) {
		for _, c := range cmds {
			if c.OnUsageError == nil {
				c.OnUsageError = usageError
			}
			c.HideHelpCommand = true // --help is enough: no "help" command of its own
			prepare(c.Subcommands)
		}
	}
	prepare(app.Commands)
	err := app.Run(append([]string{app.Name}, args...))
	if err == nil {
		return 0
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(app.ErrWriter, msg)
		}
		if ec.ExitCode() == 3 {
			return 2 // urfave/cli's "help NAME" for an unknown NAME
		}
		return ec.ExitCode()
	}
	fmt.Fprintf(app.ErrWriter, "%s: %v\n", app.Name, err)
	return 1
}

// Usage reports a command line the command c refuses: the problem and its
// usage on stderr, exit 2.
func Usage(c *cli.Context, format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	name := c.App.Name
	if c.Command != nil && c.Command.Name != "" && len(c.Lineage()) > 2 {
		name = c.Command.HelpName // with its parents': "seccomp-agent record show"
	}
	fmt.Fprintf(c.App.ErrWriter, "%s: %s\n\n", name, msg)
	showHelp(c)
	return cli.Exit("", 2)
}

// NoArgs refuses any argument left after c's flags.
func NoArgs(c *cli.Context) error {
	if c.Args().Present() {
		return Usage(c, "unknown command or argument %q", c.Args().First())
	}
	return nil
}

// Lookup returns the context of c's lineage where the flag name was set, so
// a flag that both the app and the command define can go before or after
// the command; c if it was set nowhere.
func Lookup(c *cli.Context, name string) *cli.Context {
	for _, x := range c.Lineage() {
		if x.Command != nil && x.IsSet(name) {
			return x
		}
	}
	return c
}

func usageError(c *cli.Context, err error, _ bool) error {
	return Usage(c, "%v", err)
}

// showHelp prints c's help on stderr: it goes with an error.
func showHelp(c *cli.Context) {
	w := c.App.Writer
	c.App.Writer = c.App.ErrWriter
	defer func() { c.App.Writer = w }()
	if l := c.Lineage(); len(l) > 2 && c.Command != nil {
		_ = cli.ShowCommandHelp(l[1], c.Command.Name)
		return
	}
	_ = cli.ShowAppHelp(c)
}
