// Package agent is the seccomp-agent command: flags, the listening socket,
// signals, and the audit-log summary. The agent itself is pkg/notify.
package agentcmd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"syscall"
	"time"

	"github.com/seccomp-shim/seccomp-shim/internal/holder"
	"github.com/seccomp-shim/seccomp-shim/pkg/notify"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
)

// Main runs seccomp-agent with args (os.Args[1:]) and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "summary" {
		return summary(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "hold" {
		return hold(args[1:], stderr)
	}
	fs := flag.NewFlagSet("seccomp-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", policy.DefaultSocket, "UNIX socket runc hands notify fds to (its directory is made root-only)")
	auditLog := fs.String("audit-log", "/var/log/seccomp-shim/audit.log", "file the audit records are appended to")
	toStdout := fs.Bool("audit-stdout", false, "also write audit records to stdout")
	metricsAddr := fs.String("metrics", "127.0.0.1:9646", "address for Prometheus metrics at /metrics; empty turns them off")
	holderCtl := fs.String("holder", "", "the holder's control socket (seccomp-agent hold): get containers' fds from it, so they survive this agent's restarts")
	config := fs.String("config", "", "the policy file ([[notify.rule]]); default $SECCOMP_SHIM_CONFIG or "+policy.DefaultConfigPath)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger := log.New(stderr, "seccomp-agent: ", log.LstdFlags)
	if *config != "" {
		os.Setenv(policy.ConfigEnv, *config)
	}
	if err := run(*socket, *auditLog, *metricsAddr, *holderCtl, *toStdout, stdout, logger); err != nil {
		logger.Print(err)
		return 1
	}
	return 0
}

func run(socket, auditPath, metricsAddr, holderCtl string, toStdout bool, stdout io.Writer, logger *log.Logger) error {
	if err := os.MkdirAll(filepath.Dir(auditPath), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(auditPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("--audit-log: %w", err)
	}
	defer f.Close()
	var w io.Writer = f
	if toStdout {
		w = io.MultiWriter(f, stdout)
	}
	cfg, err := policy.Load(os.Getenv)
	if err != nil {
		return err
	}
	l, err := listen(socket)
	if err != nil {
		return err
	}
	audit := notify.NewAuditLog(w)
	pol := notify.NewPolicy(cfg)
	metrics := notify.NewMetrics()
	metrics.AuditDropped = audit.DroppedCount
	s := &notify.Server{Handler: pol, Audit: audit, Metrics: metrics, Logf: logger.Printf, BlockingReceive: notify.BlockingOK()}
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
		mux.Handle("/metrics", metrics)
		go http.Serve(ml, mux)
		defer ml.Close()
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	stopped := make(chan struct{})
	go func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		stamp := configStamp(cfg.Source)
		for {
			select {
			case sig := <-sigs:
				if sig != syscall.SIGHUP {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					_ = s.Shutdown(ctx)
					close(stopped)
					return
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
				logger.Printf("new policy rejected, the old one stays in force: %v", err)
				continue
			}
			cfg = next
			pol.Store(next)
			logger.Printf("policy reloaded from %s: %d notify rules", next.Source, len(next.Notify.Rules))
		}
	}()
	logger.Printf("listening on %s, audit log %s", socket, auditPath)
	if holderCtl != "" {
		// Listening already, so the fds the holder forwards at once land.
		// The connection stays open for our lifetime: its end tells the
		// holder to answer in our place.
		ctl, err := net.Dial("unix", holderCtl)
		if err != nil {
			return fmt.Errorf("--holder %s: %w", holderCtl, err)
		}
		defer ctl.Close()
	}
	err = s.Serve(l)
	if errors.Is(err, notify.ErrServerClosed) {
		<-stopped // the containers' goroutines may still be recording
	}
	audit.Close()
	os.Remove(socket)
	if errors.Is(err, notify.ErrServerClosed) {
		return nil
	}
	return err
}

// hold runs the fd holder: see internal/holder.
func hold(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("seccomp-agent hold", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", policy.DefaultSocket, "the socket runc hands notify fds to ([audit] socket)")
	agentSock := fs.String("agent", "/run/seccomp-shim/agent.private.sock", "the agent's --socket, where fds are passed on")
	control := fs.String("control", "/run/seccomp-shim/holder.ctl", "the socket agents connect to (--holder)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger := log.New(stderr, "seccomp-agent hold: ", log.LstdFlags)
	rl, err := listen(*socket)
	if err != nil {
		logger.Print(err)
		return 1
	}
	cl, err := listen(*control)
	if err != nil {
		logger.Print(err)
		return 1
	}
	h := &holder.Holder{Agent: *agentSock, Logf: logger.Printf}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sigs; rl.Close(); cl.Close() }()
	logger.Printf("holding fds handed to %s; agent at %s, control %s", *socket, *agentSock, *control)
	err = h.Serve(rl, cl)
	os.Remove(*socket)
	os.Remove(*control)
	if errors.Is(err, net.ErrClosed) {
		return 0
	}
	logger.Print(err)
	return 1
}

// configStamp identifies the config file's content cheaply.
func configStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "absent"
	}
	return fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
}

// listen makes the socket in a root-only directory, replacing a stale one.
func listen(socket string) (*net.UnixListener, error) {
	dir := filepath.Dir(socket)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	if c, err := net.Dial("unix", socket); err == nil {
		c.Close()
		return nil, fmt.Errorf("--socket %s: another agent is listening", socket)
	}
	os.Remove(socket)
	return net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
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

// summary prints denials per container and syscall from an audit log.
func summary(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: seccomp-agent summary AUDIT-LOG")
		return 2
	}
	f, err := os.Open(args[0])
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer f.Close()
	type row struct {
		container, syscall string
		count              int
		first, last        string
	}
	rows := map[[2]string]*row{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r notify.Record
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		k := [2]string{r.Container, r.Syscall}
		x := rows[k]
		if x == nil {
			x = &row{container: r.Container, syscall: r.Syscall, first: r.Time}
			rows[k] = x
		}
		n, first, last := 1, r.Time, r.Time
		if r.Count > 0 {
			n, first, last = r.Count, r.First, r.Last
		}
		x.count += n
		if before(first, x.first) {
			x.first = first
		}
		if x.last == "" || before(x.last, last) {
			x.last = last
		}
	}
	list := make([]*row, 0, len(rows))
	for _, r := range rows {
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].container != list[j].container {
			return list[i].container < list[j].container
		}
		return list[i].count > list[j].count
	})
	fmt.Fprintf(stdout, "%-24s %-20s %8s  %s\n", "CONTAINER", "SYSCALL", "DENIED", "FIRST .. LAST")
	for _, r := range list {
		fmt.Fprintf(stdout, "%-24s %-20s %8d  %s .. %s\n", r.container, r.syscall, r.count, r.first, r.last)
	}
	return 0
}
