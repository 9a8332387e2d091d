package notify

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/internal/fastpath"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
	"golang.org/x/sys/unix"
)

// paths runs f against a server answering from C (the default) and one
// answering everything in Go (NoFastPath): they must not differ.
func paths(t *testing.T, f func(t *testing.T, gopath bool)) {
	for _, gopath := range []bool{false, true} {
		name := "fast"
		if gopath {
			name = "go"
		}
		t.Run(name, func(t *testing.T) { f(t, gopath) })
	}
}

// TestFloodAggregated: past PerKey records, a flood of denials is counted
// (on the fast path by the C thread, without asking Go) and written as one
// aggregate record carrying the last denial.
func TestFloodAggregated(t *testing.T) {
	paths(t, func(t *testing.T, gopath bool) {
		ts := startServerWith(t, nil, func(s *Server) {
			s.NoFastPath = gopath
			// Long enough that a slow machine's 20 round trips fit in it.
			s.Audit.PerKey, s.Audit.Window = 3, 2*time.Second
		})
		c := startChild(t)
		c.HandOff(ts.path, "ctr-flood", testMeta(t), nil)
		for i := range 20 {
			ret, errno := c.Run("getppid")
			wantErrno(t, fmt.Sprintf("getppid %d", i), ret, errno, unix.EXDEV)
		}
		if !gopath {
			// 3 written in full, the 4th hands the counting over.
			if got := ts.srv.asked.Load(); got != 4 {
				t.Errorf("the C thread asked Go %d times, want 4", got)
			}
		}
		agg := ts.waitRecord(func(r Record) bool { return r.Count > 0 })
		if agg.Count != 17 || agg.Container != "ctr-flood" || agg.Syscall != "getppid" || agg.Tid != c.Pid() ||
			agg.Errno != uint(unix.EXDEV) || agg.Rule != "profile test-profile" || agg.First == "" || agg.Last < agg.First {
			t.Errorf("aggregate record %+v, want 17 more getppid denials from tid %d", agg, c.Pid())
		}
		if full := len(ts.records()) - 1; full != 3 {
			t.Errorf("%d records in full, want 3", full)
		}
		// A new window: written in full again.
		ret, errno := c.Run("getppid")
		wantErrno(t, "getppid in a new window", ret, errno, unix.EXDEV)
		ts.waitRecord(func(r Record) bool { return r.Count == 0 && r.Time > agg.Time })
		wantMetric(t, ts, `seccomp_agent_decisions_total{action="errno",syscall="getppid"} 21`)
	})
}

// TestLiveStoreWhileCounting: a policy change takes the count back, so the
// next denial is decided (and recorded) under the new policy, and nothing
// counted is lost.
func TestLiveStoreWhileCounting(t *testing.T) {
	paths(t, func(t *testing.T, gopath bool) {
		ts := startServerWith(t, nil, func(s *Server) {
			s.NoFastPath = gopath
			s.Audit.PerKey, s.Audit.Window = 2, time.Hour
		})
		c := startChild(t)
		c.HandOff(ts.path, "ctr-live", testMeta(t), nil)
		for range 5 {
			c.Run("getppid")
		}
		ts.pol.Store(parseConfig(t, `
[[notify.rule]]
name = "now EROFS"
syscalls = ["getppid"]
action = "errno"
errno = 30
`))
		for range 5 {
			ret, errno := c.Run("getppid")
			wantErrno(t, "getppid after Store", ret, errno, unix.EROFS)
		}
		if !gopath {
			// 2 in full, 1 hands over; after Store 1 more hands over.
			if got := ts.srv.asked.Load(); got != 4 {
				t.Errorf("the C thread asked Go %d times, want 4", got)
			}
		}
		ts.shutdown() // the audit log's Close writes the aggregate
		var agg []Record
		for _, r := range ts.records() {
			if r.Count > 0 {
				agg = append(agg, r)
			}
		}
		if len(agg) != 1 || agg[0].Count != 8 || agg[0].Errno != uint(unix.EROFS) || agg[0].Rule != "now EROFS" {
			t.Errorf("aggregates %+v, want one of 8 denials, the last by \"now EROFS\"", agg)
		}
	})
}

// TestLiveFlip: continue, then errno, then continue again, in one running
// container.
func TestLiveFlip(t *testing.T) {
	paths(t, func(t *testing.T, gopath bool) {
		allow := parseConfig(t, "[[notify.rule]]\nname = \"allow\"\nsyscalls = [\"getppid\"]\naction = \"continue\"\n")
		ts := startServerWith(t, allow, func(s *Server) { s.NoFastPath = gopath })
		c := startChild(t)
		c.HandOff(ts.path, "ctr-flip", testMeta(t), nil)
		for i, cfg := range []*policy.Config{allow, {}, allow} {
			ts.pol.Store(cfg)
			ret, errno := c.Run("getppid")
			if cfg == allow && (ret != int64(os.Getpid()) || errno != 0) {
				t.Errorf("step %d: getppid = %d errno %d, want our pid", i, ret, errno)
			}
			if cfg != allow {
				wantErrno(t, fmt.Sprintf("step %d: getppid", i), ret, errno, unix.EXDEV)
			}
		}
	})
}

// TestMetricsFromC: what the C thread answered shows in the metrics,
// including the latency histogram.
func TestMetricsFromC(t *testing.T) {
	ts := startServer(t, parseConfig(t, "[[notify.rule]]\nname = \"allow\"\nsyscalls = [\"getppid\"]\naction = \"continue\"\n"))
	c := startChild(t)
	c.HandOff(ts.path, "ctr-metrics", testMeta(t), nil)
	for range 7 {
		c.Run("getppid")
	}
	if got := ts.srv.asked.Load(); got != 0 {
		t.Errorf("the C thread asked Go %d times, want 0", got)
	}
	wantMetric(t, ts, `seccomp_agent_decisions_total{action="continue",syscall="getppid"} 7`)
	wantMetric(t, ts, `seccomp_agent_notifications_total{syscall="getppid"} 7`)
	wantMetric(t, ts, `seccomp_agent_decision_seconds_bucket{le="+Inf"} 7`)
	// Drained once: a second scrape shows the same totals, not double.
	wantMetric(t, ts, `seccomp_agent_decision_seconds_count 7`)
	c.Command("exit")
	ts.waitContainers(0)
	wantMetric(t, ts, `seccomp_agent_decisions_total{action="continue",syscall="getppid"} 7`)
}

func wantMetric(t *testing.T, ts *testServer, line string) {
	t.Helper()
	var out string
	if !eventually(wait, func() bool {
		out = scrape(t, ts.metrics)
		return strings.Contains(out, line+"\n")
	}) {
		t.Errorf("metrics lack %q:\n%s", line, out)
	}
}

// TestTableAgreesWithDecide: the fast path's table and Decide run one plan,
// so wherever the table answers by itself, Decide answers the same.
func TestTableAgreesWithDecide(t *testing.T) {
	if nativeArch == 0 {
		t.Skip("no fast path on " + runtime.GOARCH)
	}
	cfg := parseConfig(t, `
[[notify.rule]]
name = "another container"
match.ids = ["db-*"]
syscalls = ["getpid"]
action = "continue"

[[notify.rule]]
name = "per call"
syscalls = ["personality"]
args = [{ index = 0, op = "eq", value = 0xffffffff }]
action = "continue"

[[notify.rule]]
name = "mount"
syscalls = ["mount", "umount2"]
action = "errno"
errno = 13

[[notify.rule]]
name = "kill"
syscalls = ["kexec_load"]
action = "kill"

[[notify.rule]]
name = "let keyctl run"
syscalls = ["keyctl", "mount"]
action = "continue"
`)
	c := &Container{ID: "web-1", Meta: dockerMeta()}
	p := NewPolicy(cfg)
	tab := p.table(c, nativeArch, false)
	want := map[string]fastpath.Kind{"getpid": fastpath.Errno, "personality": fastpath.Ask, "mount": fastpath.Errno, "kexec_load": fastpath.Ask, "keyctl": fastpath.Continue}
	for nr, e := range tab {
		name := unotify.SyscallName(nativeArch, int32(nr))
		if k, ok := want[name]; ok && e.Kind != k {
			t.Errorf("%s: table kind %v, want %v", name, e.Kind, k)
		}
		if e.Kind == fastpath.Ask {
			continue
		}
		d := p.Decide(req(c, nativeArch, int32(nr), name))
		if d.Continue != (e.Kind == fastpath.Continue) || !d.Continue && uint16(d.Errno) != e.Errno {
			t.Errorf("%s: table %+v, Decide %+v", name, e, d)
		}
	}
}
