package notify

import (
	"sync"

	"github.com/seccomp-shim/seccomp-shim/internal/fastpath"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
	"golang.org/x/sys/unix"
)

// tabler is a Handler that can say in advance how it answers each syscall
// of a container, so that a fast path can answer without asking it.
type tabler interface {
	Handler
	// table holds, for each syscall number of arch, the answer every call
	// gets, or fastpath.Ask where it depends on the call.
	table(c *Container, arch uint32, audit bool) *fastpath.Table
	// watch calls f after each change of the answers, until cancel.
	watch(f func()) (cancel func())
}

// nativeArch is the audit arch of the agent's own build: what runc's
// filters for containers on this node mostly see.
var nativeArch = func() uint32 {
	a, _ := unotify.NativeArch()
	return a.Audit
}()

// counter is a fast path's count of one syscall's denials in one
// container. Once the audit log has written a key's PerKey records for the
// window, Record hands the counting of further denials to the C thread
// (answered there without entering Go), and the log takes the count back
// when the window ends, the policy changes or the container ends.
type counter struct {
	loop    *fastpath.Loop
	nr      int32
	key     key  // set with started
	started bool // guarded by AuditLog.mu
}

// serveFast serves c's fd from a C thread until the container ends or the
// server shuts down. It returns false, having done nothing, if the thread
// can't start.
func (s *Server) serveFast(c *Container, fd int, t tabler) bool {
	if nativeArch == 0 {
		return false
	}
	_ = unotify.SetSyncWakeUp(fd) // faster where the kernel has it (6.6+)
	var n unotify.Notif
	r := &Request{Container: c, Fd: fd, Notif: &n} // one per container: no allocation per decision
	var counters [fastpath.Syscalls]counter
	ask := func(_ *fastpath.Loop, p *unotify.Notif) {
		s.asked.Add(1)
		n = *p
		r.counter = nil
		if s.Audit != nil && n.Data.Arch == nativeArch && n.Data.Nr >= 0 && n.Data.Nr < fastpath.Syscalls {
			r.counter = &counters[n.Data.Nr]
		}
		s.answer(r)
	}
	l, err := fastpath.New(fd, fastpath.Options{Arch: nativeArch, Blocking: s.BlockingReceive, StopFd: s.stop}, ask)
	if err != nil {
		s.log(c).WithError(err).Warn("no fast path: serving it from Go")
		return false
	}
	defer l.Free()
	for i := range counters {
		counters[i].loop, counters[i].nr = l, int32(i)
	}
	audit := s.Audit != nil
	var mu sync.Mutex
	update := func() {
		// Each update reads the policy in force when it runs, so whichever
		// of the first one and a concurrent Store's runs last is current.
		mu.Lock()
		defer mu.Unlock()
		// Counts taken so far belong to the old answers: take them back
		// first, so the next denial is asked and recorded under the new
		// policy; and again after, for a count a denial asked in between
		// started on the old table.
		s.Audit.detach(counters[:])
		l.SetTable(t.table(c, nativeArch, audit))
		s.Audit.detach(counters[:])
	}
	cancel := t.watch(update) // first, so no Store goes unseen
	defer cancel()
	update() // before the first notification
	if err := l.Start(); err != nil {
		s.log(c).WithError(err).Warn("no fast path: serving it from Go")
		return false
	}
	s.mu.Lock()
	if s.loops == nil {
		s.loops = map[*fastpath.Loop]struct{}{}
	}
	s.loops[l] = struct{}{}
	if s.closed {
		l.Stop() // Shutdown came first
	}
	s.mu.Unlock()
	s.Metrics.track(l, nativeArch)

	<-l.Done()
	cancel() // waits for an update in progress
	s.Audit.detach(counters[:])
	s.Metrics.untrack(l)
	if err := l.Err(); err != nil {
		s.log(c).WithError(err).Error("fast path: no longer served")
	}
	s.mu.Lock()
	delete(s.loops, l)
	s.mu.Unlock()
	return true
}

// table implements tabler: for each syscall, the answer of the first step
// of the container's plan, where that step decides without looking at the
// call (else Ask), or the profile's where no rule may decide it.
func (p *Policy) table(c *Container, arch uint32, audit bool) *fastpath.Table {
	pl := p.plan(c)
	t := &fastpath.Table{}
	for nr := range int32(fastpath.Syscalls) {
		name := unotify.SyscallName(arch, nr)
		steps := pl.steps(name)
		switch {
		case len(steps) == 0:
			e, _ := c.Meta.Answer(&unotify.Data{Arch: arch, Nr: nr}, name)
			t[nr] = errnoEntry(e, audit)
		case steps[0].perCall || steps[0].d.Kill || steps[0].d.Audit:
			t[nr] = fastpath.Entry{Kind: fastpath.Ask} // decided per call; kills and audited continues need Go
		case steps[0].d.Continue:
			t[nr] = fastpath.Entry{Kind: fastpath.Continue}
		default:
			t[nr] = errnoEntry(steps[0].d.Errno, audit)
		}
	}
	return t
}

func errnoEntry(e uint, audit bool) fastpath.Entry {
	d := unotify.Deny(0, unix.Errno(e)) // the same range check as the Go path
	return fastpath.Entry{Kind: fastpath.Errno, Errno: uint16(-d.Error), Audit: audit}
}

// watch implements tabler.
func (p *Policy) watch(f func()) (cancel func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.watchers == nil {
		p.watchers = map[*func()]struct{}{}
	}
	p.watchers[&f] = struct{}{}
	return func() {
		p.mu.Lock()
		delete(p.watchers, &f)
		p.mu.Unlock()
	}
}
