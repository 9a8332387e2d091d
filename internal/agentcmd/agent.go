// Package agentcmd is the seccomp-agent command: flags, the listening
// socket, signals, and the audit-log summary. The agent itself is
// pkg/notify.
package agentcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/seccomp-shim/seccomp-shim/internal/cliapp"
	"github.com/seccomp-shim/seccomp-shim/internal/holder"
	"github.com/seccomp-shim/seccomp-shim/internal/logfile"
	"github.com/seccomp-shim/seccomp-shim/internal/nriplugin"
	"github.com/seccomp-shim/seccomp-shim/internal/recording"
	"github.com/seccomp-shim/seccomp-shim/pkg/notify"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
)

// DefaultAuditLog is where serve writes the audit log, and summary reads it.
const DefaultAuditLog = "/var/log/seccomp-shim/audit.log"

// Main runs seccomp-agent with args (os.Args[1:]) and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	app := cliapp.New("seccomp-agent", "answer containers' notified syscalls and write the audit log of denials", stdout, stderr)
	app.Description = "Without a command, seccomp-agent serves: the flags are serve's."
	serve := func(c *cli.Context) error {
		if err := cliapp.NoArgs(c); err != nil {
			return err
		}
		return serveCmd(c, stdout, stderr)
	}
	app.Flags, app.Action = serveFlags(), serve
	app.Commands = []*cli.Command{
		{Name: "serve", Usage: "receive runc's notify fds, answer by policy, audit denials (the default)", Flags: serveFlags(), Action: serve},
		{Name: "hold", Usage: "hold containers' notify fds across the agent's restarts", Flags: []cli.Flag{
			&cli.StringFlag{Name: "socket", Value: policy.DefaultSocket, Usage: "the socket runc hands notify fds to ([audit] socket)"},
			&cli.StringFlag{Name: "agent", Value: "/run/seccomp-shim/agent.private.sock", Usage: "the agent's --socket, where fds are passed on"},
			&cli.StringFlag{Name: "control", Value: "/run/seccomp-shim/holder.ctl", Usage: "the socket agents connect to (--holder)"},
		}, Action: func(c *cli.Context) error {
			if err := noServeFlags(c); err != nil {
				return err
			}
			if err := cliapp.NoArgs(c); err != nil {
				return err
			}
			return hold(c, newLogger(stderr))
		}},
		{Name: "summary", Usage: "print notified syscalls per container, syscall, action and rule from an audit log", ArgsUsage: "[AUDIT-LOG] (default " + DefaultAuditLog + ")",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "format", Value: "table", Usage: "table or json"},
				&cli.BoolFlag{Name: "json", Usage: "the same as --format json"},
			},
			Action: func(c *cli.Context) error {
				if err := noServeFlags(c); err != nil {
					return err
				}
				if a := flagAfterArgs(c); a != "" {
					return cliapp.Usage(c, "flag %s after the AUDIT-LOG: flags go before it (usage: seccomp-agent summary [--json] [AUDIT-LOG])", a)
				}
				if c.NArg() > 1 {
					return cliapp.Usage(c, "takes one AUDIT-LOG at most (usage: seccomp-agent summary [AUDIT-LOG])")
				}
				format := c.String("format")
				if c.Bool("json") {
					format = "json"
				}
				if format != "table" && format != "json" {
					return cliapp.Usage(c, "--format %q: table or json", format)
				}
				path := DefaultAuditLog
				if c.NArg() == 1 {
					path = c.Args().First()
				}
				return summary(path, format, stdout)
			}},
		suggestCommand(stdout, stderr),
		recordCommand(stdout, stderr),
	}
	return cliapp.Run(app, args)
}

// serveFlags are serve's, which the app takes too: a fresh set each time,
// as urfave/cli records on a flag whether it was set.
func serveFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "socket", Value: policy.DefaultSocket, Usage: "UNIX socket runc hands notify fds to (a directory made for it is root-only; a shared one is refused)"},
		&cli.StringFlag{Name: "audit-log", Value: DefaultAuditLog, Usage: "file the audit records are appended to"},
		&cli.BoolFlag{Name: "audit-stdout", Usage: "also write audit records to stdout"},
		&cli.StringFlag{Name: "metrics", Value: "127.0.0.1:9646", Usage: "address for Prometheus metrics at /metrics; empty turns them off"},
		&cli.StringFlag{Name: "holder", Usage: "the holder's control socket (seccomp-agent hold): get containers' fds from it, so they survive this agent's restarts"},
		&cli.StringFlag{Name: "config", Usage: "the policy file, reloaded when it changes: its [[notify.rule]]s, its [record] dir, and with --nri-socket its [[rule]]s and profiles; default $SECCOMP_SHIM_CONFIG or " + policy.DefaultConfigPath},
		&cli.StringFlag{Name: "nri-socket", Usage: "also apply the policy as the NRI plugin " + nriplugin.Index + "-" + nriplugin.Name + " of the runtime serving NRI here (containerd 2.x: " + nriplugin.DefaultSocket + "); empty: off"},
	}
}

// noServeFlags refuses serve's flags, which the app takes, before another
// command: they would be ignored.
func noServeFlags(c *cli.Context) error {
	for _, x := range c.Lineage()[1:] { // the command's parents, up to the app's
		if x.App != nil && x.NumFlags() > 0 {
			return cliapp.Usage(c, "the flags before %q are serve's; %s takes its own after it", c.Command.Name, c.Command.Name)
		}
	}
	return nil
}

// newLogger is the agent's own log: logrus text on stderr, which systemd's
// journal and kubectl logs keep.
func newLogger(stderr io.Writer) *logrus.Logger {
	l := logrus.New()
	l.Out = stderr
	return l
}

func serveCmd(c *cli.Context, stdout, stderr io.Writer) error {
	flag := func(name string) *cli.Context { return cliapp.Lookup(c, name) }
	logger := newLogger(stderr)
	if config := flag("config").String("config"); config != "" {
		os.Setenv(policy.ConfigEnv, config)
	}
	err := run(flag("socket").String("socket"), flag("audit-log").String("audit-log"), flag("metrics").String("metrics"),
		flag("holder").String("holder"), flag("nri-socket").String("nri-socket"), flag("audit-stdout").Bool("audit-stdout"), stdout, logger)
	if err != nil {
		logger.Error(err)
		return cli.Exit("", 1)
	}
	return nil
}

func run(socket, auditPath, metricsAddr, holderCtl, nriSocket string, toStdout bool, stdout io.Writer, logger *logrus.Logger) error {
	if err := os.MkdirAll(filepath.Dir(auditPath), 0o750); err != nil {
		return err
	}
	f, err := notify.OpenAuditFile(auditPath, logger)
	if err != nil {
		return fmt.Errorf("--audit-log: %w", err)
	}
	defer f.Close()
	var w io.Writer = f
	if toStdout {
		w = tee{f, stdout}
	}
	cfg, err := policy.Load(os.Getenv)
	if err != nil {
		return err
	}
	l, err := listen(socket, "--socket", logger)
	if err != nil {
		return err
	}
	audit := notify.NewAuditLog(w)
	pol := notify.NewPolicy(cfg)
	metrics := notify.NewMetrics()
	metrics.AuditDropped = audit.DroppedCount
	// Beside our socket: where the shims' audit.socket is (the holder's
	// sits in the same directory).
	metrics.DegradedCreates = func() (uint64, error) { return logfile.Degraded(filepath.Dir(socket)) }
	metrics.UsesHolder = holderCtl != ""
	nriMetrics := nriplugin.NewMetrics()
	recorder := recording.NewCollector(cfg.Record.Dir, logger)
	s := &notify.Server{Handler: pol, Audit: audit, Metrics: metrics, Log: logger, BlockingReceive: notify.BlockingOK(), Observer: recorder}
	if runtime.GOMAXPROCS(0) < 2 {
		// Pinned to one CPU, a thread blocked in RECV must not leave the
		// rest of the agent without a P to run on.
		runtime.GOMAXPROCS(2)
	}
	if metricsAddr != "" {
		ml, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics %s: %w", metricsAddr, err)
		}
		mux := http.NewServeMux()
		reg := notify.NewRegistry(metrics, cliapp.Version())
		if nriSocket != "" {
			reg.MustRegister(nriMetrics.Collectors()...)
		}
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		go http.Serve(ml, mux)
		defer ml.Close()
		metricsAddr = ml.Addr().String() // the port, if it was :0
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	stopped := make(chan struct{})
	go func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		stamp := configStamp(cfg.Source)
		for {
			select {
			case sig := <-sigs:
				if sig != syscall.SIGHUP {
					logger.WithField("signal", sig).Info("stopping")
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					_ = s.Shutdown(ctx)
					close(stopped)
					return
				}
				// logrotate's postrotate: a new file at the path now.
				if err := f.Reopen(); err != nil {
					logger.WithError(err).Error("audit log not reopened: records go to the old file")
				} else {
					logger.WithField("audit_log", auditPath).Info("audit log reopened")
				}
			case <-tick.C:
				if configStamp(cfg.Source) == stamp {
					continue
				}
			}
			// SIGHUP or a changed file: a new policy for running
			// containers too, but only if it validates.
			stamp = configStamp(cfg.Source)
			next, err := policy.Load(os.Getenv)
			if err != nil {
				logger.WithError(err).Error("new policy rejected, the old one stays in force")
				continue
			}
			cfg = next
			pol.Store(next)
			recorder.SetDir(next.Record.Dir)
			logger.WithFields(logrus.Fields{"config": next.Source, "notify_rules": len(next.Notify.Rules)}).Info("policy reloaded")
		}
	}()
	logger.WithFields(logrus.Fields{"socket": socket, "audit_log": auditPath, "metrics": metricsAddr}).Info("listening")
	if holderCtl != "" {
		// Listening already, so the fds the holder forwards at once land.
		// The connection stays open for our lifetime: its end tells the
		// holder to answer in our place.
		link, err := dialHolder(holderCtl, logger, metrics)
		if err != nil {
			return err
		}
		defer link.Close()
	}
	if nriSocket != "" {
		// Once listening, so the first containers it routes to us find us.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p := &nriplugin.Plugin{Load: func() (*policy.Config, error) { return policy.Load(os.Getenv) }, Log: logger, Metrics: nriMetrics}
		go p.Run(ctx, nriSocket, time.Second)
	}
	err = s.Serve(l)
	if errors.Is(err, notify.ErrServerClosed) {
		<-stopped // the containers' goroutines may still be recording
	}
	audit.Close()
	os.Remove(socket)
	if errors.Is(err, notify.ErrServerClosed) {
		logger.Info("stopped")
		return nil
	}
	return err
}

// tee writes each audit record to the file and to stdout. Unlike
// io.MultiWriter, a failed write to the file (a full disk) does not cost
// the stdout copy (kubectl logs); the file's error is the one counted.
type tee struct{ file, stdout io.Writer }

func (t tee) Write(p []byte) (int, error) {
	t.stdout.Write(p)
	return t.file.Write(p)
}

// hold runs the fd holder: see internal/holder.
func hold(c *cli.Context, logger *logrus.Logger) error {
	socket, agentSock, control := c.String("socket"), c.String("agent"), c.String("control")
	fail := func(err error) error {
		logger.Error(err)
		return cli.Exit("", 1)
	}
	rl, err := listen(socket, "--socket", logger)
	if err != nil {
		return fail(err)
	}
	cl, err := listen(control, "--control", logger)
	if err != nil {
		return fail(err)
	}
	h := &holder.Holder{Agent: agentSock, Log: logger}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		sig, ok := <-sigs
		if !ok {
			return
		}
		logger.WithField("signal", sig).Info("stopping")
		rl.Close()
		cl.Close()
	}()
	logger.WithFields(logrus.Fields{"socket": socket, "agent": agentSock, "control": control}).Info("holding the fds handed to socket")
	err = h.Serve(rl, cl)
	os.Remove(socket)
	os.Remove(control)
	if errors.Is(err, net.ErrClosed) {
		logger.Info("stopped")
		return nil
	}
	return fail(fmt.Errorf("stopping: %w", err))
}

// configStamp identifies the config file's content cheaply.
func configStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "absent"
	}
	return fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
}

// listen makes the socket, replacing a stale one. A directory it creates
// is made root-only. One that exists (/run) is left as it is, but refused if
// others could replace the socket in it: whoever did would receive the
// containers' notify fds from runc. flag names the socket in errors.
func listen(socket, flag string, logger *logrus.Logger) (*net.UnixListener, error) {
	dir := filepath.Dir(socket)
	warning, err := socketDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, socket, err)
	}
	if warning != "" {
		logger.WithField("socket", socket).Warn(warning)
	}
	if c, err := net.Dial("unix", socket); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s %s: another agent is listening", flag, socket)
	}
	os.Remove(socket)
	return net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
}

// socketDir makes dir root-only if it does not exist, and otherwise checks
// that no one but root (or us) can replace what is in it. A sticky
// directory (/tmp) is let through with a warning: others can't replace
// the socket there, but can take its name first.
func socketDir(dir string) (warning string, err error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", err
		}
		return "", os.Chmod(dir, 0o700) // whatever the umask
	}
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return "", fmt.Errorf("directory %s belongs to uid %d, who could replace the socket: use a directory of root's", dir, st.Uid)
	}
	if fi.Mode().Perm()&0o022 == 0 {
		return "", nil
	}
	if fi.Mode()&os.ModeSticky == 0 {
		return "", fmt.Errorf("directory %s is world- or group-writable (%v) without the sticky bit: anyone who can write it could replace the socket and receive containers' notify fds; use a root-only directory such as /run/seccomp-shim", dir, fi.Mode().Perm())
	}
	return fmt.Sprintf("directory %s is shared (%v, sticky): others can't replace the socket but could take its name before a restart; a root-only directory such as /run/seccomp-shim is safer", dir, fi.Mode()&(os.ModePerm|os.ModeSticky)), nil
}

// before compares RFC 3339 times as times: as strings, 06:00:00Z would sort
// after 06:00:00.5Z.
func before(a, b string) bool {
	ta, errA := time.Parse(time.RFC3339Nano, a)
	tb, errB := time.Parse(time.RFC3339Nano, b)
	if errA != nil || errB != nil {
		return a < b
	}
	return ta.Before(tb)
}

// summaryRow is one line of summary: the records of one container,
// syscall, action and rule. The rule tells a profile's would-be denials
// (complain, "profile NAME") from a recording's ("recording:NAME") and from
// a notify rule's.
type summaryRow struct {
	Container string `json:"container"`
	Name      string `json:"name,omitempty"`
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Syscall   string `json:"syscall"`
	Action    string `json:"action"`
	Rule      string `json:"rule,omitempty"`
	Count     int    `json:"count"`
	First     string `json:"first"`
	Last      string `json:"last"`
}

// summary prints the records of an audit log per container, syscall and
// action and rule, as a table or JSON.
func summary(path, format string, stdout io.Writer) error {
	rows := map[[4]string]*summaryRow{}
	names := map[string]notify.Record{} // the CRI names last seen per container
	err := eachRecord(path, func(r notify.Record) {
		if r.Name != "" || r.Pod != "" || r.Namespace != "" {
			names[r.Container] = r
		}
		k := [4]string{r.Container, r.Syscall, r.Action, r.Rule}
		x := rows[k]
		if x == nil {
			x = &summaryRow{Container: r.Container, Syscall: r.Syscall, Action: r.Action, Rule: r.Rule, First: r.Time}
			rows[k] = x
		}
		n, first, last := 1, r.Time, r.Time
		if r.Count > 0 {
			n, first, last = r.Count, r.First, r.Last
		}
		x.Count += n
		if before(first, x.First) {
			x.First = first
		}
		if x.Last == "" || before(x.Last, last) {
			x.Last = last
		}
	})
	if err != nil {
		return err
	}
	list := make([]*summaryRow, 0, len(rows))
	for _, r := range rows {
		n := names[r.Container]
		r.Name, r.Pod, r.Namespace = n.Name, n.Pod, n.Namespace
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.Container != b.Container {
			return a.Container < b.Container
		}
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Syscall+" "+a.Action+" "+a.Rule < b.Syscall+" "+b.Action+" "+b.Rule
	})
	if format == "json" {
		e := json.NewEncoder(stdout)
		e.SetIndent("", "  ")
		return e.Encode(list)
	}
	w := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	// RULE comes last: a rule's name may hold spaces ("profile default"),
	// and the columns before it split on whitespace as they did before it.
	fmt.Fprintln(w, "CONTAINER\tNAME\tPOD\tNAMESPACE\tSYSCALL\tACTION\tCOUNT\tFIRST\tLAST\tRULE")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, r := range list {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Container, dash(r.Name), dash(r.Pod), dash(r.Namespace), r.Syscall, r.Action, r.Count, r.First, r.Last, dash(r.Rule))
	}
	return w.Flush()
}
