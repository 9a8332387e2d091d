// Package costs prices, one at a time, the pieces the agent adds to a
// notify round trip on top of floor.c's RECV and SEND, for
// docs/notify-benchmark.md:
//
//	go test -run '^$' -bench . -benchmem ./bench/notify/costs/
//
// None of them needs root or a container.
package costs

import (
	"io"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/pkg/notify"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
	"golang.org/x/sys/unix"
)

// BenchmarkSyscall is the unit the others compare with: the cheapest
// syscall, from Go.
func BenchmarkSyscall(b *testing.B) {
	for b.Loop() {
		unix.Getppid()
	}
}

// BenchmarkPollReady is the poll(2) the agent makes before every RECV, on
// its two fds (the notify fd and the stop eventfd), when a notification is
// already waiting, as it is in a busy loop. Eventfds stand in for the
// notify fd: both answer poll with a lock and a check.
func BenchmarkPollReady(b *testing.B) {
	ready, err := unix.Eventfd(1, unix.EFD_CLOEXEC)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(ready)
	stop, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(stop)
	fds := []unix.PollFd{{Fd: int32(ready), Events: unix.POLLIN}, {Fd: int32(stop), Events: unix.POLLIN}}
	for b.Loop() {
		if _, err := unix.Poll(fds, -1); err != nil {
			b.Fatal(err)
		}
	}
}

var sinkRequest *notify.Request

// BenchmarkRequest is what Server.answer does before deciding: name the
// arch and the syscall, and build the Request. There it escapes to the heap
// because Handler.Decide takes it through an interface (go build
// -gcflags=-m ./pkg/notify: "moved to heap: r"); here a global stands in
// for the interface.
func BenchmarkRequest(b *testing.B) {
	c := &notify.Container{ID: "bench"}
	n := &unotify.Notif{Data: unotify.Data{Nr: unix.SYS_GETPPID, Arch: unix.AUDIT_ARCH_X86_64}}
	b.ReportAllocs()
	for b.Loop() {
		sinkRequest = &notify.Request{Container: c, Notif: n, Fd: -1, Arch: n.Data.ArchName(), Syscall: unotify.SyscallName(n.Data.Arch, n.Data.Nr)}
	}
}

// BenchmarkAuditRecordSuppressed is the audit log's cost for a denial in a
// flood, past the records written in full: a map lookup and a counter under
// the log's mutex, with the last call's fields kept for the aggregate. No
// record is built and no time formatted, so it allocates nothing (0 B/op, 0
// allocs/op with -benchmem).
func BenchmarkAuditRecordSuppressed(b *testing.B) {
	a := notify.NewAuditLog(io.Discard)
	defer a.Close()
	c := &notify.Container{ID: "bench"}
	n := &unotify.Notif{Data: unotify.Data{Nr: unix.SYS_GETPPID, Arch: unix.AUDIT_ARCH_X86_64}}
	r := &notify.Request{Container: c, Notif: n, Fd: -1, Arch: "x86_64", Syscall: "getppid"}
	d := notify.Decision{Errno: uint(unix.EPERM), Rule: "bench"}
	for range a.PerKey + 1 { // past the records written in full
		a.Record(c, -1, n, r, d, time.Now())
	}
	b.ReportAllocs()
	for b.Loop() {
		a.Record(c, -1, n, r, d, time.Now())
	}
}

// BenchmarkTimeFormat is what the above no longer pays per denial (one
// allocation): the time is formatted once, when the aggregate record is
// written.
func BenchmarkTimeFormat(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = time.Now().UTC().Format(time.RFC3339Nano)
	}
}
