package notify

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seccomp-shim/seccomp-shim/internal/fastpath"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
)

// latencyBuckets are upper bounds in seconds: a decision takes microseconds.
var latencyBuckets = [...]float64{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2}

// Metrics counts what the agent does, for Prometheus. Counting a decision
// allocates nothing once a (action, syscall) pair has been seen.
type Metrics struct {
	mu            sync.Mutex
	notifications map[string]uint64
	decisions     map[[2]string]uint64
	buckets       [len(latencyBuckets) + 1]uint64
	latencySum    float64
	latencyCount  uint64

	// Fast paths answer without Go: their counts are drained in at each
	// scrape and when they end.
	loops map[*fastpath.Loop]uint32 // → audit arch

	InFlight        atomic.Int64
	Containers      atomic.Int64
	HandoffFailures atomic.Uint64
	AuditDropped    func() uint64
}

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics {
	return &Metrics{notifications: map[string]uint64{}, decisions: map[[2]string]uint64{}}
}

func (m *Metrics) decided(syscall, action string, took time.Duration) {
	if m == nil {
		return
	}
	s := took.Seconds()
	m.mu.Lock()
	m.notifications[syscall]++
	m.decisions[[2]string{action, syscall}]++
	i := 0
	for i < len(latencyBuckets) && s > latencyBuckets[i] {
		i++
	}
	m.buckets[i]++
	m.latencySum += s
	m.latencyCount++
	m.mu.Unlock()
}

// track adds what l answers by itself to the metrics.
func (m *Metrics) track(l *fastpath.Loop, arch uint32) {
	if m == nil {
		return
	}
	m.mu.Lock()
	if m.loops == nil {
		m.loops = map[*fastpath.Loop]uint32{}
	}
	m.loops[l] = arch
	m.mu.Unlock()
}

// untrack drains l a last time and forgets it.
func (m *Metrics) untrack(l *fastpath.Loop) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.drain(l, m.loops[l])
	delete(m.loops, l)
	m.mu.Unlock()
}

// drain adds what l answered since its last drain. m.mu is held.
func (m *Metrics) drain(l *fastpath.Loop, arch uint32) {
	st := l.Drain()
	for action, counts := range map[string]map[int32]uint64{"continue": st.Continues, "errno": st.Errnos} {
		for nr, n := range counts {
			name := unotify.SyscallName(arch, nr)
			m.notifications[name] += n
			m.decisions[[2]string{action, name}] += n
		}
	}
	// The bounds are the same as latencyBuckets', in nanoseconds (checked
	// by TestLatencyBoundsMatch).
	for i, n := range st.Buckets {
		m.buckets[i] += n
	}
	m.latencySum += st.Sum.Seconds()
	m.latencyCount += st.Count
}

// ServeHTTP writes the Prometheus text format.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	m.WriteTo(w)
}

// WriteTo writes the metrics in Prometheus' text format.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inflight := m.InFlight.Load()
	for l, arch := range m.loops {
		m.drain(l, arch)
		inflight += l.InFlight()
	}
	var n int64
	p := func(format string, a ...any) {
		k, _ := fmt.Fprintf(w, format, a...)
		n += int64(k)
	}
	p("# HELP seccomp_agent_notifications_total Notified syscalls received, by syscall.\n# TYPE seccomp_agent_notifications_total counter\n")
	for _, k := range sortedKeys(m.notifications) {
		p("seccomp_agent_notifications_total{syscall=%q} %d\n", k, m.notifications[k])
	}
	p("# HELP seccomp_agent_decisions_total Decisions, by action and syscall.\n# TYPE seccomp_agent_decisions_total counter\n")
	keys := make([][2]string, 0, len(m.decisions))
	for k := range m.decisions {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	for _, k := range keys {
		p("seccomp_agent_decisions_total{action=%q,syscall=%q} %d\n", k[0], k[1], m.decisions[k])
	}
	p("# HELP seccomp_agent_inflight_notifications Notifications received and not yet answered.\n# TYPE seccomp_agent_inflight_notifications gauge\nseccomp_agent_inflight_notifications %d\n", inflight)
	p("# HELP seccomp_agent_containers Containers whose notify fd the agent serves.\n# TYPE seccomp_agent_containers gauge\nseccomp_agent_containers %d\n", m.Containers.Load())
	p("# HELP seccomp_agent_handoff_failures_total Hand-offs refused or broken.\n# TYPE seccomp_agent_handoff_failures_total counter\nseccomp_agent_handoff_failures_total %d\n", m.HandoffFailures.Load())
	if m.AuditDropped != nil {
		p("# HELP seccomp_agent_audit_dropped_total Audit records dropped because the writer fell behind.\n# TYPE seccomp_agent_audit_dropped_total counter\nseccomp_agent_audit_dropped_total %d\n", m.AuditDropped())
	}
	p("# HELP seccomp_agent_decision_seconds Time from receiving a notification to answering it.\n# TYPE seccomp_agent_decision_seconds histogram\n")
	var cum uint64
	for i, b := range latencyBuckets {
		cum += m.buckets[i]
		p("seccomp_agent_decision_seconds_bucket{le=\"%g\"} %d\n", b, cum)
	}
	cum += m.buckets[len(latencyBuckets)]
	p("seccomp_agent_decision_seconds_bucket{le=\"+Inf\"} %d\nseccomp_agent_decision_seconds_sum %g\nseccomp_agent_decision_seconds_count %d\n", cum, m.latencySum, m.latencyCount)
	return n, nil
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
