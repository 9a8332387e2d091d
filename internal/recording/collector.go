package recording

import (
	"sync"
	"sync/atomic"

	"github.com/seccomp-shim/seccomp-shim/pkg/notify"
	"github.com/sirupsen/logrus"
)

// Collector is the agent's notify.Observer for recorded containers: it
// collects what each one would have been denied (everything beyond the
// recording profile's baseline) and, when the agent stops serving it,
// merges it into the recording of its name in the store. Containers in
// complain mode that are not recorded pass it by.
type Collector struct {
	Log *logrus.Logger // nil logs nothing

	dir  atomic.Pointer[string]
	mu   sync.Mutex
	recs map[*notify.Container]*Recording // one per hand-off being served
}

// NewCollector returns a Collector that writes into dir.
func NewCollector(dir string, log *logrus.Logger) *Collector {
	c := &Collector{Log: log, recs: map[*notify.Container]*Recording{}}
	c.SetDir(dir)
	return c
}

// SetDir moves where the recordings of containers ending from now on are
// written: the config's [record] dir, reloaded.
func (c *Collector) SetDir(dir string) { c.dir.Store(&dir) }

// name is the recording ctr is recorded under, "" for none.
func name(ctr *notify.Container) string {
	if ctr.Meta == nil {
		return ""
	}
	return ctr.Meta.Record
}

// WouldDeny implements notify.Observer: it adds the call to its
// container's recording.
func (c *Collector) WouldDeny(r *notify.Request, _ notify.Decision) {
	n := name(r.Container)
	if n == "" {
		return
	}
	arch, ok := r.Notif.Data.ABI()
	if !ok || arch.Spec == "" {
		return // an architecture no profile can name
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := c.recs[r.Container]
	if rec == nil {
		rec = New(n)
		c.recs[r.Container] = rec
	}
	rec.Add(arch.Spec, r.Syscall, r.Notif.Data.Args)
}

// Released implements notify.Observer: it merges what was collected into
// the store. A container counts once, when it ends; a runc exec's process
// (an exec probe, kubectl exec) adds its syscalls but is not counted. When
// the agent stops while the container runs on, what was seen so far is
// written all the same, uncounted: under a holder the next agent records
// the rest and counts it at its end.
func (c *Collector) Released(ctr *notify.Container, agentStopping bool) {
	n := name(ctr)
	if n == "" {
		return
	}
	c.mu.Lock()
	rec := c.recs[ctr]
	delete(c.recs, ctr)
	c.mu.Unlock()
	if rec == nil {
		rec = New(n) // nothing beyond the baseline: still a run of it
	}
	if !ctr.Exec && !agentStopping {
		rec.Containers = 1
	}
	rec.First, rec.Last = Now(), Now()
	s := Store{Dir: *c.dir.Load()}
	log := c.log().WithFields(logrus.Fields{"container": ctr.ID, "recording": n, "file": s.Path(n)})
	merged, err := s.Add(rec)
	if err != nil {
		log.WithError(err).Error("recording not written: what this container made is lost")
		return
	}
	log.WithFields(logrus.Fields{"containers": merged.Containers, "agent_stopping": agentStopping}).Info("recording written")
}

func (c *Collector) log() *logrus.Logger {
	if c.Log != nil {
		return c.Log
	}
	l := logrus.New()
	l.SetLevel(logrus.PanicLevel)
	return l
}
