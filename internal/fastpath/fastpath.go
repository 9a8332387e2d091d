// Package fastpath serves a seccomp notify fd from a C thread, so that the
// notifications a fixed table can answer never enter the Go runtime.
//
// Measured on one CPU shared with the container, a Go thread blocked in
// RECV costs about 1.2x the round trip of a C listener, while the same loop
// on a C thread in a Go process costs about 1.0x (docs/notify-benchmark.md):
// the runtime's other threads wake up on the round trip's CPU whenever Go
// code runs there. So the table answers what depends only on the syscall
// (continue, or an errno, counting audited denials once the audit log has
// handed a flood over to it), and the C thread calls Go, synchronously, for
// everything else: the first denials of a window, rules on arguments, the
// caller or a path, kills, and other architectures. Go answers those itself.
package fastpath

/*
#cgo CFLAGS: -Wall -O2
#include <stdlib.h>
#include <linux/seccomp.h>
#include "fastpath.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime/cgo"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
)

// Syscalls bounds the syscall numbers a table covers.
const Syscalls = C.FP_SYSCALLS

// Kind is what the C thread does with a syscall.
type Kind uint8

const (
	Ask      Kind = C.FP_ASK      // call the Ask function
	Continue Kind = C.FP_CONTINUE // let the syscall run
	Errno    Kind = C.FP_ERRNO    // fail it with Entry.Errno
)

// Entry is the table's answer for one syscall number.
type Entry struct {
	Kind  Kind
	Errno uint16 // Errno: 1..4094 (unotify.Deny's range); anything else asks
	// Audit, for Errno: the denial is audited, so it is answered here only
	// while its number is counting (StartCounting), and asked otherwise.
	Audit bool
}

// Table holds an Entry per syscall number of the loop's architecture.
type Table [Syscalls]Entry

// Loop is one fd served by a C thread.
type Loop struct {
	c      *C.struct_fp_loop // C memory: the C thread may not hold Go pointers
	h      cgo.Handle
	ask    func(*Loop, *unotify.Notif)
	n      unotify.Notif // the asked notification, copied out of C
	done   chan struct{}
	err    error
	broken atomic.Bool
}

// Options configures Start.
type Options struct {
	// Arch is the audit arch the table answers; notifications of other
	// arches are asked.
	Arch uint32
	// Blocking waits in RECV without polling first (one syscall less per
	// notification). Only where the kernel wakes a waiting RECV when the
	// filter's last task exits (6.11+); Stop then takes effect at the next
	// notification.
	Blocking bool
	// StopFd, for a polling loop, is an fd that becomes readable to make
	// every loop end (an eventfd).
	StopFd int
}

// New prepares to serve fd: Start serves it on a new C thread until no task
// uses the filter, the StopFd fires, or Stop. Each notification the table
// does not answer is handed to ask, on that thread; ask must answer it
// (unotify.Send) and must not keep the pointer. The table starts empty (all
// asked): set it before Start. The caller keeps fd open until Done, and
// calls Free at the end.
func New(fd int, o Options, ask func(*Loop, *unotify.Notif)) (*Loop, error) {
	c := (*C.struct_fp_loop)(C.calloc(1, C.sizeof_struct_fp_loop))
	if c == nil {
		return nil, errors.New("fastpath: out of memory")
	}
	l := &Loop{c: c, ask: ask, done: make(chan struct{})}
	l.h = cgo.NewHandle(l)
	c.fd, c.stopfd, c.arch, c.handle = C.int(fd), C.int(o.StopFd), C.uint32_t(o.Arch), C.uintptr_t(l.h)
	if o.Blocking {
		c.blocking = 1
	}
	return l, nil
}

// Start starts the C thread. After an error the loop is Done.
func (l *Loop) Start() error {
	if e := C.fp_start(l.c); e != 0 {
		l.err = fmt.Errorf("fastpath: starting a thread: %w", syscall.Errno(e))
		close(l.done)
		return l.err
	}
	return nil
}

// Start is New, then Start.
func Start(fd int, o Options, ask func(*Loop, *unotify.Notif)) (*Loop, error) {
	l, err := New(fd, o, ask)
	if err != nil {
		return nil, err
	}
	if err := l.Start(); err != nil {
		l.Free()
		return nil, err
	}
	return l, nil
}

//export fpAsk
func fpAsk(h C.uintptr_t, n *C.struct_seccomp_notif) {
	l := cgo.Handle(h).Value().(*Loop)
	l.n = *(*unotify.Notif)(unsafe.Pointer(n))
	defer func() {
		// A panic must not cross into C (that ends the process): this loop
		// ends instead, and the unanswered call fails once the fd closes.
		if p := recover(); p != nil {
			l.err = fmt.Errorf("fastpath: panic while answering: %v", p)
			l.broken.Store(true)
			l.Stop()
		}
	}()
	l.ask(l, &l.n)
}

//export fpDone
func fpDone(h C.uintptr_t, e C.int) {
	l := cgo.Handle(h).Value().(*Loop)
	if e != 0 && l.err == nil {
		l.err = fmt.Errorf("fastpath: receive: %w", syscall.Errno(e))
	}
	close(l.done)
}

// Done is closed when the C thread has ended.
func (l *Loop) Done() <-chan struct{} { return l.done }

// Err tells why the loop ended, after Done: nil when the filter's tasks
// are gone or it was stopped.
func (l *Loop) Err() error {
	<-l.done
	if l.err == nil && l.c.send_err != 0 {
		return fmt.Errorf("fastpath: send: %w", syscall.Errno(l.c.send_err))
	}
	return l.err
}

// Stop ends the loop before its next receive: at once if it is between
// two, else once the next notification (answered first) or, for a polling
// loop, the StopFd wakes it.
func (l *Loop) Stop() { atomic.StoreUint32((*uint32)(&l.c.stopping), 1) }

// Free releases the loop's memory: after Done, or instead of Start.
func (l *Loop) Free() {
	select {
	case <-l.done:
	default:
		close(l.done) // never started
	}
	l.h.Delete()
	C.free(unsafe.Pointer(l.c.table))
	C.free(unsafe.Pointer(l.c))
	l.c = nil
}

// SetTable puts t in force for the next notification. It waits for the C
// thread to finish reading the table it replaces.
func (l *Loop) SetTable(t *Table) {
	ct := (*C.struct_fp_table)(C.malloc(C.sizeof_struct_fp_table))
	if ct != nil {
		for i, e := range t {
			if e.Kind != Continue && e.Kind != Errno || e.Kind == Errno && (e.Errno == 0 || e.Errno > 4094) {
				e = Entry{Kind: Ask} // never an answer the C side could misread
			}
			ce := &ct.e[i]
			ce.kind, ce.err, ce.audit = C.uint8_t(e.Kind), C.uint16_t(e.Errno), 0
			if e.Audit {
				ce.audit = 1
			}
		}
	}
	// Out of memory leaves no table: everything is asked, so the old
	// answers never outlive a policy change.
	old := atomic.SwapPointer((*unsafe.Pointer)(unsafe.Pointer(&l.c.table)), unsafe.Pointer(ct))
	for old != nil && atomic.LoadPointer((*unsafe.Pointer)(unsafe.Pointer(&l.c.using))) == old {
		time.Sleep(time.Microsecond) // a read of one entry: rare and short
	}
	C.free(old)
}

// StartCounting lets the C thread answer and count audited denials of nr.
func (l *Loop) StartCounting(nr int32) {
	if nr >= 0 && nr < Syscalls {
		atomic.StoreUint32((*uint32)(&l.c.slots[nr].counting), 1)
	}
}

// Counted is what a slot counted.
type Counted struct {
	N    uint64
	Tid  uint32
	Args [6]uint64
	Last time.Time // of the last one counted
}

// StopCounting hands nr's audited denials back to Go (they are asked again)
// and returns what was counted since the last StopCounting.
func (l *Loop) StopCounting(nr int32) Counted {
	if nr < 0 || nr >= Syscalls {
		return Counted{}
	}
	s := &l.c.slots[nr]
	C.fp_stop_counting(s)
	c := Counted{N: uint64(s.count), Tid: uint32(s.tid), Last: time.Unix(0, int64(s.last_ns))}
	for i := range c.Args {
		c.Args[i] = uint64(s.args[i])
	}
	s.count = 0
	return c
}

// Stats is what the C thread answered since the last Drain.
type Stats struct {
	Continues, Errnos map[int32]uint64 // by syscall number, non-zero only
	Buckets           [C.FP_BUCKETS]uint64
	Sum               time.Duration
	Count             uint64
}

// LatencyBounds are the histogram's upper bounds; Buckets has one more, +Inf.
var LatencyBounds = func() (b [C.FP_BUCKETS - 1]time.Duration) {
	for i := range b {
		b[i] = time.Duration(C.fp_bounds_ns[i])
	}
	return b
}()

// Drain takes the counts of what the C thread answered by itself.
func (l *Loop) Drain() Stats {
	var s Stats
	take := func(p *C.uint64_t) uint64 { return atomic.SwapUint64((*uint64)(unsafe.Pointer(p)), 0) }
	for nr := range Syscalls {
		if n := take(&l.c.continues[nr]); n > 0 {
			if s.Continues == nil {
				s.Continues = map[int32]uint64{}
			}
			s.Continues[int32(nr)] = n
		}
		if n := take(&l.c.errnos[nr]); n > 0 {
			if s.Errnos == nil {
				s.Errnos = map[int32]uint64{}
			}
			s.Errnos[int32(nr)] = n
		}
	}
	for i := range s.Buckets {
		s.Buckets[i] = take(&l.c.buckets[i])
	}
	s.Sum = time.Duration(take(&l.c.sum_ns))
	s.Count = take(&l.c.count)
	return s
}

// InFlight is how many notifications the C thread is answering (0 or 1).
func (l *Loop) InFlight() int64 { return atomic.LoadInt64((*int64)(unsafe.Pointer(&l.c.inflight))) }
