package agentcmd

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/seccomp-shim/seccomp-shim/internal/cliapp"
	"github.com/seccomp-shim/seccomp-shim/pkg/notify"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/urfave/cli/v2"
)

// suggestCommand is `seccomp-agent suggest`.
func suggestCommand(stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "suggest",
		Usage:     "print the profile a complain-mode container ran under, plus exactly what it would have been denied, as a Docker-format profile",
		ArgsUsage: "[AUDIT-LOG] (default " + DefaultAuditLog + ")",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "container", Usage: "the container's id"},
			&cli.StringFlag{Name: "pod", Usage: "a Kubernetes pod, as NAMESPACE/POD"},
			&cli.StringFlag{Name: "image", Usage: "an image, as the CRI engine names it"},
			&cli.StringFlag{Name: "profile", Usage: "the profile to start from; default: the one the records name"},
			&cli.StringFlag{Name: "config", Usage: "the policy file, for profiles.dir; default $SECCOMP_SHIM_CONFIG or " + policy.DefaultConfigPath},
		},
		Action: func(c *cli.Context) error {
			if err := noServeFlags(c); err != nil {
				return err
			}
			const usage = "seccomp-agent suggest --container ID|--pod NAMESPACE/POD|--image IMAGE [--profile NAME] [--config FILE] [AUDIT-LOG]"
			if a := flagAfterArgs(c); a != "" {
				return cliapp.Usage(c, "flag %s after the AUDIT-LOG: flags go before it (usage: %s)", a, usage)
			}
			if c.NArg() > 1 {
				return cliapp.Usage(c, "takes one AUDIT-LOG at most (usage: %s)", usage)
			}
			n := 0
			for _, f := range []string{"container", "pod", "image"} {
				if c.String(f) != "" {
					n++
				}
			}
			if n != 1 {
				return cliapp.Usage(c, "name exactly one of --container, --pod, --image")
			}
			var match func(notify.Record) bool
			switch {
			case c.String("container") != "":
				id := c.String("container")
				match = func(r notify.Record) bool { return r.Container == id }
			case c.String("pod") != "":
				ns, pod, ok := strings.Cut(c.String("pod"), "/")
				if !ok || ns == "" || pod == "" || strings.Contains(pod, "/") {
					return cliapp.Usage(c, "--pod %q: want NAMESPACE/POD", c.String("pod"))
				}
				match = func(r notify.Record) bool { return r.Namespace == ns && r.Pod == pod }
			default:
				img := c.String("image")
				match = func(r notify.Record) bool { return r.Image == img }
			}
			if config := c.String("config"); config != "" {
				os.Setenv(policy.ConfigEnv, config)
			}
			path := DefaultAuditLog
			if c.NArg() == 1 {
				path = c.Args().First()
			}
			if err := suggest(path, match, c.String("profile"), stdout, stderr); err != nil {
				fmt.Fprintln(stderr, "seccomp-agent suggest:", err)
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}

// suggest prints the Docker-format profile that lets the would-be denials
// of the containers match selects through: the profile they ran under
// (profile, or the one their records name) plus those calls. A recording's
// records (rule "recording:NAME") are left out: they are the calls beyond
// the recording baseline, not denials any profile would have made, and
// the recording itself becomes the profile (seccomp-agent record install).
func suggest(path string, match func(notify.Record) bool, profile string, stdout, stderr io.Writer) error {
	var calls []policy.Call
	var ran []string // the profiles the records name
	recorded := 0
	err := eachRecord(path, func(r notify.Record) {
		if r.Action != notify.ActionComplain || !match(r) {
			return
		}
		if strings.HasPrefix(r.Rule, policy.RecordingProfile("")) {
			recorded++
			return
		}
		calls = append(calls, policy.Call{Syscall: r.Syscall, Args: r.Args})
		if !slices.Contains(ran, r.Rule) {
			ran = append(ran, r.Rule)
		}
	})
	if err != nil {
		return err
	}
	if len(calls) == 0 {
		if recorded > 0 {
			return fmt.Errorf("%s: no would-be denials (action %q) of that selection, only %d records of a recording (rule %q), which are no denials: seccomp-agent record install turns a recording into a profile", path, notify.ActionComplain, recorded, policy.RecordingProfile("NAME"))
		}
		return fmt.Errorf("%s: no would-be denials (action %q) of that selection", path, notify.ActionComplain)
	}
	if profile == "" {
		if len(ran) != 1 || !strings.HasPrefix(ran[0], "profile ") {
			return fmt.Errorf("%s: the records name %q, not one profile of the node's: name it with --profile", path, ran)
		}
		profile = strings.TrimPrefix(ran[0], "profile ")
	}
	cfg, err := policy.Load(os.Getenv)
	if err != nil {
		return err
	}
	base, err := policy.LoadProfile(cfg.Profiles.Dir, profile)
	if err != nil {
		return err
	}
	out, skipped, err := policy.Suggest(base, calls)
	if err != nil {
		return err
	}
	if len(skipped) > 0 {
		fmt.Fprintf(stderr, "seccomp-agent suggest: left out (unknown to this libseccomp): %s\n", strings.Join(skipped, ", "))
	}
	_, err = stdout.Write(out)
	return err
}

// eachRecord calls f with each record of the audit log at path; lines that
// are not records are skipped.
func eachRecord(path string, f func(notify.Record)) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r notify.Record
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			f(r)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
