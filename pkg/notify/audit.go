package notify

import (
	"encoding/json"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
)

// ActionComplain is the audit record's action for a would-be denial that
// ran: its container is in complain mode.
const ActionComplain = "complain"

// Record is one line of the audit log.
type Record struct {
	Time      string    `json:"time"`
	Container string    `json:"container"`
	Name      string    `json:"name,omitempty"`
	Pod       string    `json:"pod,omitempty"`
	Namespace string    `json:"namespace,omitempty"`
	Image     string    `json:"image,omitempty"`
	Pid       int       `json:"pid"`
	Tid       int       `json:"tid"`
	Comm      string    `json:"comm,omitempty"`
	Exe       string    `json:"exe,omitempty"`
	UID       int       `json:"uid"`
	Arch      string    `json:"arch"`
	Syscall   string    `json:"syscall"`
	Nr        int32     `json:"nr"`
	Args      [6]uint64 `json:"args"`
	Action    string    `json:"action"`
	Errno     uint      `json:"errno,omitempty"`
	Rule      string    `json:"rule,omitempty"`
	// Would is set on a complain-mode container's would-be denial (action
	// "complain", which ran): the action its profile would have taken,
	// with Errno for "errno".
	Would string `json:"would,omitempty"`
	// Set on aggregate records: how many more denials of this syscall in
	// this container, not written in full, between First and Last.
	Count int    `json:"count,omitempty"`
	First string `json:"first,omitempty"`
	Last  string `json:"last,omitempty"`
}

// AuditLog writes records as JSON lines. A container that floods gets its
// first PerKey records per Window written in full and the rest counted, then
// one aggregate record per (container, syscall) at the end of the window: the
// log's volume stays bounded. Writing happens on one goroutine behind a
// bounded queue, so a slow disk never stalls a container; what the queue
// can't take, and what the writer fails to write, is counted in Dropped.
type AuditLog struct {
	PerKey int
	Window time.Duration

	mu      sync.Mutex
	seen    map[key]*agg
	q       chan []byte
	done    chan struct{}
	closed  bool
	Dropped uint64
}

// key is what a flood is bounded by: let through and denied apart.
type key struct {
	container, syscall string
	continued          bool
}

type agg struct {
	n, suppressed int
	first         time.Time
	// The last suppressed denial, formatted only into the aggregate.
	lastC    *Container
	lastN    unotify.Notif
	lastD    Decision
	lastArch string
	lastTime time.Time
	counters []*counter // fast paths counting this key's denials
}

// fold takes back what ct counted into g.
func (g *agg) fold(ct *counter) {
	got := ct.loop.StopCounting(ct.nr)
	ct.started = false
	if got.N == 0 {
		return
	}
	g.suppressed += int(got.N)
	if got.Last.After(g.lastTime) {
		g.lastN.Pid, g.lastN.Data.Args, g.lastTime = got.Tid, got.Args, got.Last
	}
}

// detach takes back the counts of a fast path's counters (its container
// ended, or the policy changed): the next denials are recorded in Go again.
func (a *AuditLog) detach(cs []counter) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range cs {
		ct := &cs[i]
		if !ct.started {
			continue
		}
		g := a.seen[ct.key]
		if g == nil { // not expected: flush folds a key's counters before dropping it
			g = &agg{}
		}
		g.fold(ct)
		g.counters = slices.DeleteFunc(g.counters, func(c *counter) bool { return c == ct })
	}
}

// NewAuditLog starts writing to w (a file, or stdout too through
// io.MultiWriter).
func NewAuditLog(w io.Writer) *AuditLog {
	a := &AuditLog{PerKey: 10, Window: 10 * time.Second, seen: map[key]*agg{}, q: make(chan []byte, 4096), done: make(chan struct{})}
	go a.write(w)
	return a
}

func (a *AuditLog) write(w io.Writer) {
	defer close(a.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case b, ok := <-a.q:
			if !ok {
				a.flush(w, true)
				return
			}
			a.put(w, b)
		case <-t.C:
			a.flush(w, false)
		}
	}
}

// flush writes aggregates of windows that ended (all of them at close).
func (a *AuditLog) flush(w io.Writer, all bool) {
	a.mu.Lock()
	var out []Record
	now := time.Now()
	for k, g := range a.seen {
		if !all && now.Sub(g.first) < a.Window {
			continue
		}
		for _, ct := range g.counters {
			g.fold(ct)
		}
		if g.suppressed > 0 {
			r := record(g.lastC, &g.lastN, g.lastArch, k.syscall, g.lastD, g.lastTime)
			r.Count, r.First, r.Last = g.suppressed, g.first.UTC().Format(time.RFC3339Nano), r.Time
			r.Time = now.UTC().Format(time.RFC3339Nano)
			out = append(out, r)
		}
		delete(a.seen, k)
	}
	a.mu.Unlock()
	for _, r := range out {
		b, _ := json.Marshal(r)
		a.put(w, append(b, '\n'))
	}
}

// put writes one record, counting it as dropped if the write fails (a full
// disk: AuditFile logs it).
func (a *AuditLog) put(w io.Writer, b []byte) {
	if _, err := w.Write(b); err != nil {
		a.mu.Lock()
		a.Dropped++
		a.mu.Unlock()
	}
}

// Record logs one decision: a denial, or a continue its rule audits.
func (a *AuditLog) Record(c *Container, fd int, n *unotify.Notif, r *Request, d Decision, now time.Time) {
	k := key{c.ID, r.Syscall, d.Continue}
	a.mu.Lock()
	g := a.seen[k]
	if g == nil {
		g = &agg{first: now}
		a.seen[k] = g
	}
	g.n++
	if g.n > a.PerKey {
		// Counted, not formatted: a flood costs the container a counter.
		g.suppressed++
		g.lastC, g.lastN, g.lastD, g.lastArch, g.lastTime = c, *n, d, r.Arch, now
		if ct := r.counter; ct != nil && !ct.started && !d.Continue {
			// (The C thread counts denials only: a continue stays in Go.)
			// From here the C thread counts this key's denials itself.
			ct.started, ct.key = true, k
			g.counters = append(g.counters, ct)
			ct.loop.StartCounting(ct.nr)
		}
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	rec := record(c, n, r.Arch, r.Syscall, d, now)
	rec.Pid, rec.Comm, rec.Exe, rec.UID = procInfo(fd, n)
	b, _ := json.Marshal(rec)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		a.Dropped++ // a container answered while the agent stops
		return
	}
	select {
	case a.q <- append(b, '\n'):
	default:
		a.Dropped++
	}
}

func record(c *Container, n *unotify.Notif, arch, syscall string, d Decision, now time.Time) Record {
	rec := Record{
		Time: now.UTC().Format(time.RFC3339Nano), Container: c.ID,
		Tid: int(n.Pid), Arch: arch, Syscall: syscall, Nr: n.Data.Nr, Args: n.Data.Args,
		Action: "errno", Errno: d.Errno, Rule: d.Rule, UID: -1, // -1: not read, not root
	}
	rec.Namespace, rec.Pod, rec.Name, rec.Image = policy.Labels(c.Annotations)
	switch {
	case d.Complain:
		rec.Action, rec.Would = ActionComplain, d.Would
	case d.Kill:
		rec.Action = "kill"
	case d.Continue:
		rec.Action, rec.Errno = "continue", 0
	}
	return rec
}

// DroppedCount returns how many records were not written: the queue could
// not take them, or the write failed.
func (a *AuditLog) DroppedCount() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.Dropped
}

// Close writes what is pending, aggregates included.
func (a *AuditLog) Close() {
	a.mu.Lock()
	a.closed = true
	close(a.q)
	a.mu.Unlock()
	<-a.done
}
