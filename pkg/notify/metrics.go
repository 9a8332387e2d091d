package notify

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/seccomp-shim/seccomp-shim/internal/fastpath"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
)

// latencyBuckets are upper bounds in seconds: a decision takes microseconds.
var latencyBuckets = [...]float64{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2}

// Metrics counts what the agent does, for Prometheus: it is a
// prometheus.Collector (NewRegistry). Counting a decision allocates nothing
// once a (action, syscall) pair has been seen.
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
	AcceptErrors    atomic.Uint64 // accepts that failed (out of fds): the agent backs off and retries
	AuditDropped    func() uint64
	// DegradedCreates reads the count of containers created unaudited
	// (internal/logfile.Degraded); nil leaves the metric out.
	DegradedCreates func() (uint64, error)
	// UsesHolder reports the holder link's metrics; set before serving.
	UsesHolder       bool
	HolderConnected  atomic.Bool   // the control connection to the holder is open
	HolderReconnects atomic.Uint64 // times it was lost and made again
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

// NewRegistry returns a Prometheus registry with m, the agent's
// seccomp_agent_build_info, and the standard Go and process collectors:
// serve it with promhttp.HandlerFor.
func NewRegistry(m *Metrics, version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "seccomp_agent_build_info", Help: "The agent's build: always 1, with its version and Go version as labels.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	info.Set(1)
	reg.MustRegister(m, info, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// The descriptions of what Collect reports.
var (
	notificationsDesc = prometheus.NewDesc("seccomp_agent_notifications_total", "Notified syscalls received, by syscall.", []string{"syscall"}, nil)
	decisionsDesc     = prometheus.NewDesc("seccomp_agent_decisions_total", "Decisions, by action and syscall.", []string{"action", "syscall"}, nil)
	inflightDesc      = prometheus.NewDesc("seccomp_agent_inflight_notifications", "Notifications received and not yet answered.", nil, nil)
	containersDesc    = prometheus.NewDesc("seccomp_agent_containers", "Containers whose notify fd the agent serves.", nil, nil)
	handoffDesc       = prometheus.NewDesc("seccomp_agent_handoff_failures_total", "Hand-offs refused or broken.", nil, nil)
	acceptDesc        = prometheus.NewDesc("seccomp_agent_accept_errors_total", "Accepts on the agent's socket that failed (out of fds): it backs off and retries.", nil, nil)
	holderUpDesc      = prometheus.NewDesc("seccomp_agent_holder_connected", "1 while the agent's control connection to the holder is open (only with --holder).", nil, nil)
	reconnectsDesc    = prometheus.NewDesc("seccomp_agent_holder_reconnects_total", "Times the connection to the holder was lost and made again (only with --holder).", nil, nil)
	droppedDesc       = prometheus.NewDesc("seccomp_agent_audit_dropped_total", "Audit records not written: the writer fell behind, or the write failed (disk full).", nil, nil)
	degradedDesc      = prometheus.NewDesc("seccomp_agent_degraded_creates_total", "Containers created since boot without the audit their policy asked for (no agent answered): they run unaudited for life. Counted by seccomp-shim and seccomp-hook in the run directory.", nil, nil)
	latencyDesc       = prometheus.NewDesc("seccomp_agent_decision_seconds", "Time from receiving a notification to answering it.", nil, nil)
)

// Describe is prometheus.Collector's.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{notificationsDesc, decisionsDesc, inflightDesc, containersDesc, handoffDesc, acceptDesc, holderUpDesc, reconnectsDesc, droppedDesc, degradedDesc, latencyDesc} {
		ch <- d
	}
}

// Collect is prometheus.Collector's: at each scrape it drains what the C
// fast paths counted, and reports the counts as they are. Counting stays
// plain increments under a mutex, so a decision allocates nothing.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, metric := range m.snapshot() {
		ch <- metric
	}
}

// snapshot makes the metrics under the lock, so a scrape holds up the
// decisions no longer than that.
func (m *Metrics) snapshot() []prometheus.Metric {
	// Files first, outside the lock every decision made in Go takes.
	var dropped, degraded uint64
	var degradedErr error
	if m.AuditDropped != nil {
		dropped = m.AuditDropped()
	}
	if m.DegradedCreates != nil {
		degraded, degradedErr = m.DegradedCreates()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	inflight := m.InFlight.Load()
	for l, arch := range m.loops {
		m.drain(l, arch)
		inflight += l.InFlight()
	}
	out := make([]prometheus.Metric, 0, len(m.notifications)+len(m.decisions)+5)
	for k, n := range m.notifications {
		out = append(out, prometheus.MustNewConstMetric(notificationsDesc, prometheus.CounterValue, float64(n), k))
	}
	for k, n := range m.decisions {
		out = append(out, prometheus.MustNewConstMetric(decisionsDesc, prometheus.CounterValue, float64(n), k[0], k[1]))
	}
	out = append(out,
		prometheus.MustNewConstMetric(inflightDesc, prometheus.GaugeValue, float64(inflight)),
		prometheus.MustNewConstMetric(containersDesc, prometheus.GaugeValue, float64(m.Containers.Load())),
		prometheus.MustNewConstMetric(handoffDesc, prometheus.CounterValue, float64(m.HandoffFailures.Load())),
		prometheus.MustNewConstMetric(acceptDesc, prometheus.CounterValue, float64(m.AcceptErrors.Load())))
	if m.UsesHolder {
		up := 0.0
		if m.HolderConnected.Load() {
			up = 1
		}
		out = append(out,
			prometheus.MustNewConstMetric(holderUpDesc, prometheus.GaugeValue, up),
			prometheus.MustNewConstMetric(reconnectsDesc, prometheus.CounterValue, float64(m.HolderReconnects.Load())))
	}
	if m.AuditDropped != nil {
		out = append(out, prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(dropped)))
	}
	if m.DegradedCreates != nil && degradedErr == nil {
		out = append(out, prometheus.MustNewConstMetric(degradedDesc, prometheus.CounterValue, float64(degraded)))
	}
	buckets := make(map[float64]uint64, len(latencyBuckets))
	var cum uint64
	for i, b := range latencyBuckets {
		cum += m.buckets[i]
		buckets[b] = cum
	}
	return append(out, prometheus.MustNewConstHistogram(latencyDesc, m.latencyCount, m.latencySum, buckets))
}
