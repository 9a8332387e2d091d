package notify

import (
	"testing"
	"time"
)

// hotPath is one decision as Server.answer makes it, minus the ioctls:
// Policy.Decide and Metrics.decided for a syscall already counted.
type hotPath struct {
	pol   *Policy
	m     *Metrics
	rule  *Request // decided by a rule on syscall and args
	miss  *Request // no rule matches: Replay
	sink  Decision
	ready bool
}

func newHotPath(tb testing.TB) *hotPath {
	cfg := parseConfig(tb, `
[[notify.rule]]
name = "other containers"
match.ids = ["db-*"]
syscalls = ["keyctl"]
action = "errno"
errno = 13

[[notify.rule]]
name = "personality query"
syscalls = ["personality"]
args = [{ index = 0, op = "eq", value = 0xffffffff }]
action = "continue"
`)
	c := &Container{ID: "web-1", Annotations: criAnnotations, Meta: dockerMeta()}
	h := &hotPath{pol: NewPolicy(cfg), m: NewMetrics(),
		rule: x64(c, 135, "personality", 0xffffffff),
		miss: x64(c, 165, "mount"),
	}
	// Counted once, so the maps hold the keys already.
	h.run(h.rule)
	h.run(h.miss)
	return h
}

func (h *hotPath) run(r *Request) {
	d := h.pol.Decide(r)
	action := "errno"
	if d.Continue {
		action = "continue"
	}
	h.m.decided(r.Syscall, action, time.Microsecond)
	h.sink = d
}

func BenchmarkDecide(b *testing.B) {
	h := newHotPath(b)
	for _, bc := range []struct {
		name string
		r    *Request
	}{{"rule", h.rule}, {"replay", h.miss}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h.run(bc.r)
			}
		})
	}
}

// TestDecideAllocs holds the hot path to what BenchmarkDecide reports, so a
// regression fails go test without -bench.
func TestDecideAllocs(t *testing.T) {
	h := newHotPath(t)
	if a := testing.AllocsPerRun(1000, func() { h.run(h.rule) }); a != 0 {
		t.Errorf("a decision by rule allocates %v times", a)
	}
	a := testing.AllocsPerRun(1000, func() { h.run(h.miss) })
	if a == 1 {
		t.Fatal(`regression: notify.go Replay builds its Rule with "profile " + m.Profile on every decision, one allocation per Replay; compute the string once per container (in serve, next to ParseAuditMeta) and reuse it`)
	}
	if a != 0 {
		t.Errorf("a Replay decision allocates %v times", a)
	}
}
