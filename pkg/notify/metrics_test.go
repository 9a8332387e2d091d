package notify

import (
	"bufio"
	"math"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/seccomp-shim/seccomp-shim/internal/fastpath"
)

// sample is one line of Prometheus' text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var (
	metricName = `[a-zA-Z_:][a-zA-Z0-9_:]*`
	helpRE     = regexp.MustCompile(`^# HELP (` + metricName + `) \S.*$`)
	typeRE     = regexp.MustCompile(`^# TYPE (` + metricName + `) (counter|gauge|histogram|summary|untyped)$`)
	sampleRE   = regexp.MustCompile(`^(` + metricName + `)(\{(.*)\})? (\S+)$`)
	labelRE    = regexp.MustCompile(`^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,|$)`)
)

// parseProm is a strict reading of the text exposition format
// (version 0.0.4): every sample belongs to a family whose TYPE came before
// it, and each family is declared once.
func parseProm(t *testing.T, text string) (samples []sample, types map[string]string) {
	t.Helper()
	types = map[string]string{}
	helped := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		if m := helpRE.FindStringSubmatch(line); m != nil {
			if helped[m[1]] {
				t.Errorf("line %d: second HELP for %s", ln, m[1])
			}
			helped[m[1]] = true
			continue
		}
		if m := typeRE.FindStringSubmatch(line); m != nil {
			if _, ok := types[m[1]]; ok {
				t.Errorf("line %d: second TYPE for %s", ln, m[1])
			}
			types[m[1]] = m[2]
			continue
		}
		m := sampleRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("line %d: not Prometheus text: %q", ln, line)
			continue
		}
		s := sample{name: m[1], labels: map[string]string{}}
		for rest := m[3]; rest != ""; {
			l := labelRE.FindStringSubmatch(rest)
			if l == nil {
				t.Errorf("line %d: bad labels %q", ln, m[3])
				break
			}
			if _, dup := s.labels[l[1]]; dup {
				t.Errorf("line %d: label %s twice", ln, l[1])
			}
			s.labels[l[1]] = l[2]
			rest = rest[len(l[0]):]
		}
		v, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			t.Errorf("line %d: value %q: %v", ln, m[4], err)
		}
		s.value = v
		family := s.name
		if _, ok := types[family]; !ok {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if f := strings.TrimSuffix(s.name, suf); f != s.name && (types[f] == "histogram" || types[f] == "summary") {
					family = f
				}
			}
		}
		if _, ok := types[family]; !ok {
			t.Errorf("line %d: %s has no TYPE before it", ln, s.name)
		}
		if !helped[family] {
			t.Errorf("line %d: %s has no HELP", ln, s.name)
		}
		samples = append(samples, s)
	}
	return samples, types
}

func find(samples []sample, name string, labels ...string) (float64, bool) {
next:
	for _, s := range samples {
		if s.name != name || len(s.labels) != len(labels)/2 {
			continue
		}
		for i := 0; i < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		return s.value, true
	}
	return 0, false
}

func TestMetricsText(t *testing.T) {
	m := NewMetrics()
	for _, d := range []struct {
		syscall, action string
		took            time.Duration
	}{
		{"getppid", "errno", time.Microsecond}, // on a bound: le is inclusive
		{"getppid", "errno", 3 * time.Microsecond},
		{"getppid", "errno", 3 * time.Microsecond},
		{"getppid", "continue", 20 * time.Microsecond},
		{"mount", "kill", 2 * time.Millisecond},
		{"keyctl", "errno", time.Second}, // above every bound
	} {
		m.decided(d.syscall, d.action, d.took)
	}
	m.Containers.Add(2)
	m.InFlight.Add(1)
	m.HandoffFailures.Add(3)
	m.AuditDropped = func() uint64 { return 5 }
	m.AcceptErrors.Add(7)
	m.UsesHolder = true
	m.HolderConnected.Store(true)
	m.HolderReconnects.Add(2)

	rec := httptest.NewRecorder()
	promhttp.HandlerFor(NewRegistry(m, "v1.2.3"), promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	text := rec.Body.String()
	samples, types := parseProm(t, text)
	if t.Failed() {
		t.Logf("metrics:\n%s", text)
	}

	for name, typ := range map[string]string{
		"seccomp_agent_notifications_total":     "counter",
		"seccomp_agent_decisions_total":         "counter",
		"seccomp_agent_inflight_notifications":  "gauge",
		"seccomp_agent_containers":              "gauge",
		"seccomp_agent_handoff_failures_total":  "counter",
		"seccomp_agent_audit_dropped_total":     "counter",
		"seccomp_agent_accept_errors_total":     "counter",
		"seccomp_agent_holder_connected":        "gauge",
		"seccomp_agent_holder_reconnects_total": "counter",
		"seccomp_agent_decision_seconds":        "histogram",
		"seccomp_agent_build_info":              "gauge",
		"go_goroutines":                         "gauge",
		"process_cpu_seconds_total":             "counter",
	} {
		if types[name] != typ {
			t.Errorf("TYPE of %s = %q, want %s", name, types[name], typ)
		}
	}
	for _, w := range []struct {
		name   string
		labels []string
		value  float64
	}{
		{"seccomp_agent_notifications_total", []string{"syscall", "getppid"}, 4},
		{"seccomp_agent_notifications_total", []string{"syscall", "mount"}, 1},
		{"seccomp_agent_notifications_total", []string{"syscall", "keyctl"}, 1},
		{"seccomp_agent_decisions_total", []string{"action", "errno", "syscall", "getppid"}, 3},
		{"seccomp_agent_decisions_total", []string{"action", "continue", "syscall", "getppid"}, 1},
		{"seccomp_agent_decisions_total", []string{"action", "kill", "syscall", "mount"}, 1},
		{"seccomp_agent_decisions_total", []string{"action", "errno", "syscall", "keyctl"}, 1},
		{"seccomp_agent_inflight_notifications", nil, 1},
		{"seccomp_agent_containers", nil, 2},
		{"seccomp_agent_handoff_failures_total", nil, 3},
		{"seccomp_agent_audit_dropped_total", nil, 5},
		{"seccomp_agent_accept_errors_total", nil, 7},
		{"seccomp_agent_holder_connected", nil, 1},
		{"seccomp_agent_holder_reconnects_total", nil, 2},
		{"seccomp_agent_decision_seconds_count", nil, 6},
		{"seccomp_agent_build_info", []string{"version", "v1.2.3", "goversion", runtime.Version()}, 1},
	} {
		if v, ok := find(samples, w.name, w.labels...); !ok || v != w.value {
			t.Errorf("%s%v = %v (present %v), want %v", w.name, w.labels, v, ok, w.value)
		}
	}
	if v, _ := find(samples, "seccomp_agent_decision_seconds_sum"); math.Abs(v-(1e-6+6e-6+20e-6+2e-3+1)) > 1e-9 {
		t.Errorf("histogram sum %v", v)
	}

	// Buckets: increasing bounds, cumulative counts, +Inf last and equal to
	// the count.
	var bounds, counts []float64
	for _, s := range samples {
		if s.name != "seccomp_agent_decision_seconds_bucket" {
			continue
		}
		le, err := strconv.ParseFloat(s.labels["le"], 64)
		if err != nil || len(s.labels) != 1 {
			t.Errorf("bucket labels %v", s.labels)
		}
		bounds, counts = append(bounds, le), append(counts, s.value)
	}
	if len(bounds) < 2 || !math.IsInf(bounds[len(bounds)-1], 1) {
		t.Fatalf("buckets %v: want several, +Inf last", bounds)
	}
	for i := 1; i < len(bounds); i++ {
		if bounds[i] <= bounds[i-1] || counts[i] < counts[i-1] {
			t.Errorf("bucket %d: le %v count %v after le %v count %v", i, bounds[i], counts[i], bounds[i-1], counts[i-1])
		}
	}
	if count, _ := find(samples, "seccomp_agent_decision_seconds_count"); counts[len(counts)-1] != count {
		t.Errorf("+Inf bucket %v != count %v", counts[len(counts)-1], count)
	}
	cum := func(le float64) float64 {
		for i, b := range bounds {
			if b == le {
				return counts[i]
			}
		}
		t.Errorf("no bucket le=%v", le)
		return -1
	}
	for le, want := range map[float64]float64{1e-6: 1, 5e-6: 3, 2.5e-5: 4, 1e-2: 5, math.Inf(1): 6} {
		if got := cum(le); got != want {
			t.Errorf("bucket le=%v: %v, want %v", le, got, want)
		}
	}
}

// scrape returns what Prometheus gets from m alone.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func TestMetricsEmptyAndNil(t *testing.T) {
	samples, _ := parseProm(t, scrape(t, NewMetrics()))
	if v, ok := find(samples, "seccomp_agent_decision_seconds_bucket", "le", "+Inf"); !ok || v != 0 {
		t.Errorf("empty histogram +Inf = %v, %v", v, ok)
	}
	if _, ok := find(samples, "seccomp_agent_audit_dropped_total"); ok {
		t.Error("audit_dropped without an AuditDropped source")
	}
	// A Server without Metrics counts nothing and must not crash.
	var nilMetrics *Metrics
	nilMetrics.decided("getppid", "errno", time.Microsecond)
}

func TestMetricsLabelQuoting(t *testing.T) {
	m := NewMetrics()
	// Undecodable syscalls are named syscall_<nr>; nothing needs escaping,
	// but the parser must accept whatever %q produced.
	m.decided("syscall_99999", "errno", time.Microsecond)
	out := scrape(t, m)
	samples, _ := parseProm(t, out)
	if v, ok := find(samples, "seccomp_agent_notifications_total", "syscall", "syscall_99999"); !ok || v != 1 {
		t.Errorf("syscall_99999 = %v, %v:\n%s", v, ok, out)
	}
}

// TestLatencyBoundsMatch: the fast path's C histogram adds into
// latencyBuckets bucket by bucket, so their bounds must be the same.
func TestLatencyBoundsMatch(t *testing.T) {
	if len(fastpath.LatencyBounds) != len(latencyBuckets) {
		t.Fatalf("%d C bounds, %d Go buckets", len(fastpath.LatencyBounds), len(latencyBuckets))
	}
	for i, b := range fastpath.LatencyBounds {
		if math.Abs(b.Seconds()-latencyBuckets[i]) > 1e-12 {
			t.Errorf("bound %d: C %v, Go %gs", i, b, latencyBuckets[i])
		}
	}
}
