//go:build linux && (amd64 || 386)

// Command probe runs inside test containers and reports what the seccomp
// filter lets through:
//
//	probe bench NAME N                 NAME N times, then mean ns/op and failures
//	probe status [call ...]            Seccomp: and Seccomp_filters: of /proc/self/status, then the calls
//	probe arch                         GOARCH (amd64 or 386)
//	probe call NAME [ARG...] [call ...] one line per call: "NAME ok" or "NAME errno EPERM 1"
//	probe pin CPU COMMAND...           every thread on CPU, then COMMAND (bench, tally, ...)
//	probe tally NAME N                 like bench, then a "result" line per outcome
//	probe flood NAME SECONDS THREADS   NAME from THREADS threads at once, "result" lines
//	probe race-path SECONDS            mkdirat on a path other threads keep rewriting, "result" lines
//
// A "result" line counts one outcome: "result NAME ok COUNT" or
// "result NAME errno EPERM 1 COUNT".
//
// ARGs are integers (decimal, 0x hex or negative) and default to 0, so
// pointers are NULL unless the probe supplies its own buffer. Calls that could
// change the host (reboot, sethostname, acct, syslog, ...) get fixed harmless
// arguments: they can only fail, or succeed without changing anything.
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Numbers come from x/sys/unix, so the GOARCH=386 build uses the i386 table.
var syscalls = map[string]uintptr{
	"getpid":            unix.SYS_GETPID,
	"getppid":           unix.SYS_GETPPID,
	"uname":             unix.SYS_UNAME,
	"keyctl":            unix.SYS_KEYCTL,
	"add_key":           unix.SYS_ADD_KEY,
	"unshare":           unix.SYS_UNSHARE,
	"mount":             unix.SYS_MOUNT,
	"umount2":           unix.SYS_UMOUNT2,
	"reboot":            unix.SYS_REBOOT,
	"personality":       unix.SYS_PERSONALITY,
	"chroot":            unix.SYS_CHROOT,
	"acct":              unix.SYS_ACCT,
	"swapoff":           unix.SYS_SWAPOFF,
	"syslog":            unix.SYS_SYSLOG,
	"ptrace":            unix.SYS_PTRACE,
	"bpf":               unix.SYS_BPF,
	"userfaultfd":       unix.SYS_USERFAULTFD,
	"kcmp":              unix.SYS_KCMP,
	"mknodat":           unix.SYS_MKNODAT,
	"socket":            unix.SYS_SOCKET,
	"setns":             unix.SYS_SETNS,
	"clock_settime":     unix.SYS_CLOCK_SETTIME,
	"clone":             unix.SYS_CLONE,
	"clone3":            unix.SYS_CLONE3,
	"io_uring_setup":    unix.SYS_IO_URING_SETUP,
	"pivot_root":        unix.SYS_PIVOT_ROOT,
	"sethostname":       unix.SYS_SETHOSTNAME,
	"setdomainname":     unix.SYS_SETDOMAINNAME,
	"uselib":            unix.SYS_USELIB,
	"open_by_handle_at": unix.SYS_OPEN_BY_HANDLE_AT,
	"init_module":       unix.SYS_INIT_MODULE,
	"delete_module":     unix.SYS_DELETE_MODULE,
	"perf_event_open":   unix.SYS_PERF_EVENT_OPEN,
	"fsopen":            unix.SYS_FSOPEN,
	"open_tree":         unix.SYS_OPEN_TREE,
	"pidfd_open":        unix.SYS_PIDFD_OPEN,
}

// buf is the only memory the probe hands to the kernel. A global never moves
// and is never freed, so passing its address as a uintptr is safe.
var buf [4096]byte

func bufAddr() uintptr { return uintptr(unsafe.Pointer(&buf[0])) }

// sameName makes set{host,domain}name a no-op: it writes back the current
// name of the probe's own UTS namespace.
func sameName(file string) [6]uintptr {
	b, err := os.ReadFile(file)
	n := copy(buf[:], strings.TrimSuffix(string(b), "\n"))
	if err != nil {
		n = 65 // longer than __NEW_UTS_LEN: EINVAL, never a change
	}
	return [6]uintptr{bufAddr(), uintptr(n)}
}

// fixedArgs overrides the caller's arguments where they could harm the host
// or hang the probe.
var fixedArgs = map[string]func() [6]uintptr{
	"uname": func() [6]uintptr { return [6]uintptr{bufAddr()} },
	// Magic 0: reboot can only fail (EPERM or EINVAL).
	"reboot": func() [6]uintptr { return [6]uintptr{} },
	// "" gives ENOENT; NULL would switch process accounting off.
	"acct": func() [6]uintptr { buf[0] = 0; return [6]uintptr{bufAddr()} },
	// SYSLOG_ACTION_SIZE_BUFFER only reads; other actions clear the host's log.
	"syslog": func() [6]uintptr { return [6]uintptr{10} },
	// PEEKDATA of pid 0 gives ESRCH; TRACEME would stop the probe at its
	// first signal (Go preempts with SIGURG) with nobody to resume it.
	"ptrace":        func() [6]uintptr { return [6]uintptr{2} },
	"sethostname":   func() [6]uintptr { return sameName("/proc/sys/kernel/hostname") },
	"setdomainname": func() [6]uintptr { return sameName("/proc/sys/kernel/domainname") },
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: probe status [call ...] | probe bench NAME N | probe arch | probe call NAME [ARG...] [call NAME [ARG...]]...")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "arch":
		fmt.Println(runtime.GOARCH)
	case "status":
		status()
		if len(os.Args) > 2 {
			call(os.Args[2:])
		}
	case "call":
		call(os.Args[1:])
	case "bench":
		bench(os.Args[2:])
	case "pin":
		pin(os.Args[2:])
	case "tally":
		tally(os.Args[2:])
	case "flood":
		flood(os.Args[2:])
	case "race-path":
		racePath(os.Args[2:])
	default:
		usage()
	}
}

// bench makes syscall NAME N times and prints the mean ns per call and how
// many failed: the other end of the notify round-trip benchmark.
func bench(args []string) {
	if len(args) != 2 {
		usage()
	}
	nr, ok := syscalls[args[0]]
	n, err := strconv.Atoi(args[1])
	if !ok || err != nil || n <= 0 {
		usage()
	}
	failed := 0
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, _, e := unix.RawSyscall(nr, 0, 0, 0); e != 0 {
			failed++
		}
	}
	fmt.Printf("%s %d calls %.0f ns/op %d failed\n", args[0], n, float64(time.Since(start).Nanoseconds())/float64(n), failed)
}

func status() {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.HasPrefix(s.Text(), "Seccomp:") || strings.HasPrefix(s.Text(), "Seccomp_filters:") {
			fmt.Println(s.Text())
		}
	}
}

type request struct {
	name string
	nr   uintptr
	args [6]uintptr
}

// call parses every request before making any, so a usage error runs nothing.
func call(words []string) {
	var reqs []request
	for len(words) > 0 {
		if words[0] != "call" || len(words) < 2 {
			usage()
		}
		r := request{name: words[1]}
		nr, ok := syscalls[r.name]
		if !ok {
			fmt.Fprintf(os.Stderr, "probe: unknown syscall %q on %s\n", r.name, runtime.GOARCH)
			os.Exit(2)
		}
		r.nr, words = nr, words[2:]
		for i := 0; len(words) > 0 && words[0] != "call"; i, words = i+1, words[1:] {
			if i == len(r.args) {
				usage()
			}
			r.args[i] = parseArg(words[0])
		}
		reqs = append(reqs, r)
	}
	for _, r := range reqs {
		if fix := fixedArgs[r.name]; fix != nil {
			r.args = fix()
		}
		a := r.args
		_, _, e := unix.Syscall6(r.nr, a[0], a[1], a[2], a[3], a[4], a[5])
		if e == 0 {
			fmt.Println(r.name, "ok")
		} else {
			fmt.Println(r.name, "errno", unix.ErrnoName(e), int(e))
		}
	}
}

func parseArg(s string) uintptr {
	if u, err := strconv.ParseUint(s, 0, 64); err == nil {
		return uintptr(u)
	}
	i, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe: bad argument %q\n", s)
		os.Exit(2)
	}
	return uintptr(i)
}

// pin binds every thread of the probe to one CPU and then runs the rest of
// the command line: the notify benchmark's same-CPU placement needs the
// caller on the listener's CPU, and a Go program has more threads than the
// one that makes the calls. Threads made later inherit the mask.
func pin(args []string) {
	if len(args) < 2 {
		usage()
	}
	cpu, err := strconv.Atoi(args[0])
	if err != nil || cpu < 0 {
		usage()
	}
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	// Twice: a thread started while the first pass ran may have copied an
	// unpinned mask.
	for range 2 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			fmt.Fprintln(os.Stderr, "probe: pin:", err)
			os.Exit(1)
		}
		for _, t := range tasks {
			tid, _ := strconv.Atoi(t.Name())
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				fmt.Fprintf(os.Stderr, "probe: pin thread %d to CPU %d: %v\n", tid, cpu, err)
				os.Exit(1)
			}
		}
	}
	os.Args = append(os.Args[:1], args[1:]...)
	main()
}

// outcomes counts calls by errno; 0 is success.
type outcomes map[unix.Errno]int

func (o outcomes) add(p outcomes) {
	for e, n := range p {
		o[e] += n
	}
}

func (o outcomes) total() int {
	n := 0
	for _, c := range o {
		n += c
	}
	return n
}

// print writes one "result" line per outcome, in errno order so that
// output is stable.
func (o outcomes) print(name string) {
	errs := make([]int, 0, len(o))
	for e := range o {
		errs = append(errs, int(e))
	}
	slices.Sort(errs)
	for _, e := range errs {
		if e == 0 {
			fmt.Println("result", name, "ok", o[0])
		} else {
			fmt.Println("result", name, "errno", unix.ErrnoName(unix.Errno(e)), e, o[unix.Errno(e)])
		}
	}
}

func lookup(name string) uintptr {
	nr, ok := syscalls[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "probe: unknown syscall %q on %s\n", name, runtime.GOARCH)
		os.Exit(2)
	}
	return nr
}

// tally is bench that also says how each call ended, for a test that must
// check every answer, not only count the failures.
func tally(args []string) {
	if len(args) != 2 {
		usage()
	}
	nr := lookup(args[0])
	n, err := strconv.Atoi(args[1])
	if err != nil || n <= 0 {
		usage()
	}
	var errs [4096]int // indexing, not a map, inside the timed loop
	start := time.Now()
	for i := 0; i < n; i++ {
		_, _, e := unix.RawSyscall(nr, 0, 0, 0)
		errs[uintptr(e)%uintptr(len(errs))]++
	}
	took := time.Since(start)
	fmt.Printf("tally %s %d calls %.0f ns/op\n", args[0], n, float64(took.Nanoseconds())/float64(n))
	o := outcomes{}
	for e, c := range errs {
		if c > 0 {
			o[unix.Errno(e)] = c
		}
	}
	o.print(args[0])
}

// flood makes syscall NAME from THREADS threads at once for SECONDS, as a
// hostile container would, to see whether it can starve or break the agent.
func flood(args []string) {
	if len(args) != 3 {
		usage()
	}
	nr := lookup(args[0])
	secs, err1 := strconv.ParseFloat(args[1], 64)
	threads, err2 := strconv.Atoi(args[2])
	if err1 != nil || err2 != nil || secs <= 0 || threads <= 0 {
		usage()
	}
	// A P per thread, so that every thread can be waiting for the agent at
	// the same time: RawSyscall never lets go of its P.
	runtime.GOMAXPROCS(threads + 1)
	deadline := time.Now().Add(time.Duration(secs * float64(time.Second)))
	total := outcomes{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			mine := outcomes{}
			for time.Now().Before(deadline) {
				_, _, e := unix.RawSyscall(nr, 0, 0, 0)
				mine[e]++
			}
			mu.Lock()
			total.add(mine)
			mu.Unlock()
		}()
	}
	wg.Wait()
	fmt.Printf("flood %s %d threads %d calls\n", args[0], threads, total.total())
	total.print(args[0])
}

// racy is the path racePath's threads fight over; a global never moves, so
// its address can go to the kernel as a uintptr.
var racy [64]byte

const (
	denied  = "/etc/passwd\x00" // what the path rule matches
	allowed = "/tmp/ok\x00"     // what it doesn't
)

// racePath calls mkdirat(AT_FDCWD, racy, 0755) from four threads for
// SECONDS while another thread keeps rewriting racy between a path a path
// rule denies and one it doesn't. The agent reads whatever the memory holds
// at that moment and the kernel would read it again later if the agent let
// the call through (TOCTOU), so a listener that ever allowed on what it read
// would show a success or a kernel errno (EEXIST, ENOENT, EROFS) here.
func racePath(args []string) {
	if len(args) != 1 {
		usage()
	}
	secs, err := strconv.ParseFloat(args[0], 64)
	if err != nil || secs <= 0 {
		usage()
	}
	const callers = 4
	runtime.GOMAXPROCS(callers + 2)
	copy(racy[:], denied)
	deadline := time.Now().Add(time.Duration(secs * float64(time.Second)))
	var stop sync.WaitGroup
	done := make(chan struct{})
	stop.Add(1)
	go func() {
		defer stop.Done()
		runtime.LockOSThread()
		for i := 0; ; i++ {
			if i%1024 == 0 {
				select {
				case <-done:
					return
				default:
				}
			}
			// Plain stores, racing the kernel's and the agent's reads on
			// purpose: torn mixes of the two are part of the test.
			copy(racy[:], denied)
			copy(racy[:], allowed)
		}
	}()
	fdcwd := unix.AT_FDCWD
	total := outcomes{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			mine := outcomes{}
			for time.Now().Before(deadline) {
				_, _, e := unix.RawSyscall(unix.SYS_MKDIRAT, uintptr(fdcwd), uintptr(unsafe.Pointer(&racy[0])), 0o755)
				mine[e]++
			}
			mu.Lock()
			total.add(mine)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(done)
	stop.Wait()
	fmt.Printf("race-path mkdirat %d calls\n", total.total())
	total.print("mkdirat")
}
