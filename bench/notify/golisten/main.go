// Command golisten is a ladder of Go seccomp notify listeners between
// floor.c and seccomp-agent, each adding one thing the agent does, so that
// BenchmarkNotifyRoundTrip -notify.explain can say where the agent's time
// goes:
//
//	golisten block SOCKET ANSWER          a locked OS thread blocked in RECV: floor.c in Go
//	golisten cthread SOCKET ANSWER        floor.c's loop on a C thread of this Go process: the agent's fast path, bare
//	golisten poll-locked SOCKET ANSWER    poll, then RECV, on a locked OS thread
//	golisten poll SOCKET ANSWER           the agent's loop without a decision: poll, then RECV, on a goroutine
//	golisten server SOCKET CONFIG         notify.Server's Go path (NoFastPath) deciding by CONFIG's [[notify.rule]]s, no audit, no metrics
//	golisten full SOCKET CONFIG           notify.Server's Go path with the audit log and metrics: seccomp-agent before its fast path
//	golisten block-decide SOCKET CONFIG   block's loop deciding as the agent does (policy, audit): a fix to try
//
// ANSWER is "continue" or an errno number. It is a measuring tool, not an
// agent: it trusts any root sender and stops only when killed.
package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/seccomp-shim/seccomp-shim/pkg/handoff"
	"github.com/seccomp-shim/seccomp-shim/pkg/notify"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: golisten block|cthread|poll|poll-locked SOCKET continue|ERRNO | golisten server|full|block-decide SOCKET CONFIG")
		os.Exit(2)
	}
	mode, socket, arg := os.Args[1], os.Args[2], os.Args[3]
	os.Remove(socket)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		fatal(err)
	}
	switch mode {
	case "cthread":
		e := 0
		if arg != "continue" {
			var err error
			if e, err = strconv.Atoi(arg); err != nil || e <= 0 {
				fatal(fmt.Errorf("bad answer %q", arg))
			}
		}
		for {
			conn, err := l.AcceptUnix()
			if err != nil {
				fatal(err)
			}
			h, err := handoff.Receive(conn, time.Now().Add(5*time.Second))
			conn.Close()
			if err != nil {
				continue // the shim's liveness check sends nothing
			}
			_ = unotify.SetSyncWakeUp(h.SeccompFd)
			if err := cthread(h.SeccompFd, e); err != nil {
				fatal(err)
			}
		}
	case "block", "poll", "poll-locked", "block-decide":
		answer := func(*unotify.Notif) unotify.Resp { return unotify.Continue(0) }
		switch {
		case mode == "block-decide":
			cfg, err := policy.LoadFile(arg, true)
			if err != nil {
				fatal(err)
			}
			answer = decider(cfg)
		case arg != "continue":
			e, err := strconv.Atoi(arg)
			if err != nil || e <= 0 {
				fatal(fmt.Errorf("bad answer %q", arg))
			}
			answer = func(*unotify.Notif) unotify.Resp { return unotify.Deny(0, unix.Errno(e)) }
		}
		loop := block
		if mode == "poll" || mode == "poll-locked" {
			loop = poll
		}
		for {
			conn, err := l.AcceptUnix()
			if err != nil {
				fatal(err)
			}
			go func() {
				h, err := handoff.Receive(conn, time.Now().Add(5*time.Second))
				conn.Close()
				if err != nil {
					return // the shim's liveness check sends nothing
				}
				_ = unotify.SetSyncWakeUp(h.SeccompFd)
				if mode == "poll-locked" {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
				}
				loop(h.SeccompFd, answer)
				unix.Close(h.SeccompFd)
			}()
		}
	case "server", "full":
		cfg, err := policy.LoadFile(arg, true)
		if err != nil {
			fatal(err)
		}
		s := &notify.Server{Handler: notify.NewPolicy(cfg), NoFastPath: true}
		if mode == "full" {
			s.Audit = notify.NewAuditLog(io.Discard)
			s.Metrics = notify.NewMetrics()
		}
		fatal(s.Serve(l))
	default:
		fatal(fmt.Errorf("unknown mode %q", mode))
	}
}

// block is the shape DESIGN-NOTES §7 measured at 1.0-1.1x the C floor: the
// goroutine owns its thread and sleeps in the RECV ioctl itself.
func block(fd int, answer func(*unotify.Notif) unotify.Resp) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var n unotify.Notif
	for {
		if err := unotify.Receive(fd, &n); err != nil {
			if err == unix.ENOENT {
				continue
			}
			return
		}
		r := answer(&n)
		r.ID = n.ID
		_ = unotify.Send(fd, &r)
	}
}

// poll is notify.Server.serveContainer's loop with the decision taken out:
// wait in poll(2) for the fd (and a stop fd that never fires, so the call
// is the same), then RECV, then SEND.
func poll(fd int, answer func(*unotify.Notif) unotify.Resp) {
	stop, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		fatal(err)
	}
	defer unix.Close(stop)
	var n unotify.Notif
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(stop), Events: unix.POLLIN}}
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		if fds[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 && fds[0].Revents&unix.POLLIN == 0 {
			return
		}
		if err := unotify.Receive(fd, &n); err != nil {
			if errors.Is(err, unotify.ErrNoTasks) {
				return
			}
			if err == unix.ENOENT {
				continue
			}
			return
		}
		r := answer(&n)
		r.ID = n.ID
		_ = unotify.Send(fd, &r)
	}
}

// decider answers as notify.Server.answer does, minus metrics: policy, and
// an audit record (to io.Discard) for every denial. The container is
// unknown here (no per-container state is kept), which only matters to
// rules that match containers.
func decider(cfg *policy.Config) func(*unotify.Notif) unotify.Resp {
	pol := notify.NewPolicy(cfg)
	audit := notify.NewAuditLog(io.Discard)
	c := &notify.Container{ID: "bench"}
	return func(n *unotify.Notif) unotify.Resp {
		start := time.Now()
		r := notify.Request{Container: c, Notif: n, Fd: -1, Arch: n.Data.ArchName(), Syscall: unotify.SyscallName(n.Data.Arch, n.Data.Nr)}
		d := pol.Decide(&r)
		if d.Continue {
			return unotify.Continue(n.ID)
		}
		audit.Record(c, -1, n, &r, d, start)
		return unotify.Deny(n.ID, unix.Errno(d.Errno))
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "golisten:", err)
	os.Exit(1)
}
