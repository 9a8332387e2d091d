package handoff

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Captured from runc 1.1.5 on this machine.
const runcMsg = `{"ociVersion":"1.0.2-dev","fds":["seccompFd"],"pid":3302,"state":{"ociVersion":"1.0.2-dev","id":"t2","status":"creating","pid":3302,"bundle":"/tmp/b1"}}`

func TestMain(m *testing.M) {
	// The first socket creates the netpoller's own fds; make that happen
	// before any leak count.
	if ln, err := net.Listen("unix", filepath.Join(os.TempDir(), "handoff-warmup.sock")); err == nil {
		ln.Close()
	}
	os.Exit(m.Run())
}

// chunk is one sendmsg: bytes plus the fds riding on them.
type chunk struct {
	data string
	fds  []int
}

// send does what runc's sendContainerProcessState does (dial, sendmsg with
// SCM_RIGHTS, close), but may spread the message over several sendmsg calls.
func send(path string, chunks ...chunk) error {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return err
	}
	defer c.Close()
	for i, ch := range chunks {
		if i > 0 {
			time.Sleep(10 * time.Millisecond) // let the receiver see a partial message
		}
		if len(ch.fds) == 0 {
			_, err = c.Write([]byte(ch.data)) // Write, unlike one sendmsg, never stops short
		} else if n, _, werr := c.WriteMsgUnix([]byte(ch.data), unix.UnixRights(ch.fds...), nil); werr != nil {
			err = werr
		} else if n != len(ch.data) {
			err = errors.New("short sendmsg")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func asSelf(c unix.Ucred) bool { return int(c.Uid) == os.Geteuid() }

func recvSelf(conn *net.UnixConn) (*Handoff, error) {
	return ReceiveFrom(conn, time.Now().Add(5*time.Second), asSelf)
}

// exchange runs sender against a fresh listener and recv on the accepted
// connection; both ends are closed and the sender has returned when it does.
func exchange(t *testing.T, recv func(*net.UnixConn) (*Handoff, error), sender func(path string) error) (*Handoff, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sent := make(chan error, 1)
	go func() { sent <- sender(path) }()
	conn, err := ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	h, err := recv(conn)
	conn.Close() // unblocks a sender still writing or waiting
	if serr := <-sent; serr != nil {
		t.Logf("sender: %v", serr)
	}
	return h, err
}

func fdCount(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// noLeaks is deferred as `defer noLeaks(t)()` around one case.
func noLeaks(t *testing.T) func() {
	t.Helper()
	before := fdCount(t)
	return func() {
		t.Helper()
		if after := fdCount(t); after != before {
			t.Errorf("fd leak: %d open before, %d after", before, after)
		}
	}
}

func pipe(t *testing.T) (r, w int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	return p[0], p[1]
}

func closeAll(fds ...int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// checkWorks proves fd is a live copy of the pipe write end w by writing
// through it and reading from r.
func checkWorks(t *testing.T, fd, r int) {
	t.Helper()
	if _, err := unix.Write(fd, []byte("x")); err != nil {
		t.Fatalf("write via received fd: %v", err)
	}
	buf := make([]byte, 2)
	if n, err := unix.Read(r, buf); err != nil || string(buf[:n]) != "x" {
		t.Fatalf("read back: %q %v", buf[:n], err)
	}
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("received fd not close-on-exec: flags %#x %v", flags, err)
	}
}

func TestRuncMessage(t *testing.T) {
	defer noLeaks(t)()
	r, w := pipe(t)
	defer closeAll(r, w)
	h, err := exchange(t, recvSelf, func(p string) error { return send(p, chunk{runcMsg, []int{w}}) })
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(h.SeccompFd)
	checkWorks(t, h.SeccompFd, r)
	want := specs.ContainerProcessState{
		Version: "1.0.2-dev", Fds: []string{"seccompFd"}, Pid: 3302,
		State: specs.State{Version: "1.0.2-dev", ID: "t2", Status: "creating", Pid: 3302, Bundle: "/tmp/b1"},
	}
	if !reflect.DeepEqual(h.State, want) {
		t.Errorf("state %+v, want %+v", h.State, want)
	}
	if h.Peer.Pid != int32(os.Getpid()) || int(h.Peer.Uid) != os.Geteuid() {
		t.Errorf("peer %+v, want this process", h.Peer)
	}
}

func TestMetadataAndAnnotations(t *testing.T) {
	defer noLeaks(t)()
	r, w := pipe(t)
	defer closeAll(r, w)
	want := specs.ContainerProcessState{
		Version: specs.Version, Fds: []string{specs.SeccompFdName}, Pid: 42, Metadata: "profile=strict; x=\"y\"",
		State: specs.State{Version: specs.Version, ID: "c1", Status: specs.StateCreating, Pid: 42, Bundle: "/b",
			Annotations: map[string]string{"seccomp-shim.io/audit": "true", "io.kubernetes.cri.container-name": "app"}},
	}
	msg, _ := json.Marshal(want)
	h, err := exchange(t, recvSelf, func(p string) error { return send(p, chunk{string(msg), []int{w}}) })
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(h.SeccompFd)
	if !reflect.DeepEqual(h.State, want) {
		t.Errorf("state %+v, want %+v", h.State, want)
	}
}

func TestSplitOverThreeSends(t *testing.T) {
	defer noLeaks(t)()
	r, w := pipe(t)
	defer closeAll(r, w)
	h, err := exchange(t, recvSelf, func(p string) error {
		return send(p, chunk{runcMsg[:20], nil}, chunk{runcMsg[20:70], []int{w}}, chunk{runcMsg[70:], nil})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(h.SeccompFd)
	checkWorks(t, h.SeccompFd, r)
	if h.State.State.ID != "t2" {
		t.Errorf("id %q", h.State.State.ID)
	}
}

func TestOtherFdsClosed(t *testing.T) {
	defer noLeaks(t)()
	r1, w1 := pipe(t)
	r2, w2 := pipe(t)
	defer closeAll(r1, r2)
	msg := strings.Replace(runcMsg, `["seccompFd"]`, `["other","seccompFd"]`, 1)
	h, err := exchange(t, recvSelf, func(p string) error { return send(p, chunk{msg, []int{w2, w1}}) })
	closeAll(w1, w2)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(h.SeccompFd)
	checkWorks(t, h.SeccompFd, r1) // the fd is picked by its position in "fds"
	// EOF on r2 means no write end survives, so the received copy of w2 was closed.
	if n, err := unix.Read(r2, make([]byte, 1)); n != 0 || err != nil {
		t.Errorf("other fd still open: read %d %v", n, err)
	}
}

func TestRejected(t *testing.T) {
	two := strings.Replace(runcMsg, `["seccompFd"]`, `["seccompFd","other"]`, 1)
	cases := []struct {
		name string
		want error
		msg  func(w int) []chunk
	}{
		{"too large", ErrTooLarge, func(w int) []chunk {
			return []chunk{{`{"ociVersion":"`, []int{w}}, {strings.Repeat("a", MaxPayload), nil}}
		}},
		{"too many fds in one message", ErrTooLarge, func(w int) []chunk {
			return []chunk{{runcMsg, slices.Repeat([]int{w}, MaxFds+1)}}
		}},
		{"too many fds in total", ErrTooLarge, func(w int) []chunk {
			return []chunk{{runcMsg[:10], slices.Repeat([]int{w}, MaxFds/2+1)}, {runcMsg[10:], slices.Repeat([]int{w}, MaxFds/2+1)}}
		}},
		{"garbage", ErrMalformed, func(w int) []chunk { return []chunk{{"garbage{", []int{w}}} }},
		{"not an object", ErrMalformed, func(w int) []chunk { return []chunk{{`["seccompFd"]`, []int{w}}} }},
		{"truncated", ErrMalformed, func(w int) []chunk { return []chunk{{runcMsg[:60], []int{w}}} }},
		{"nothing", ErrMalformed, func(w int) []chunk { return nil }},
		{"no seccompFd", ErrNoSeccompFd, func(w int) []chunk {
			return []chunk{{strings.Replace(runcMsg, `"seccompFd"`, `"other"`, 1), []int{w}}}
		}},
		{"seccompFd twice", ErrMalformed, func(w int) []chunk {
			return []chunk{{strings.Replace(runcMsg, `["seccompFd"]`, `["seccompFd","seccompFd"]`, 1), []int{w, w}}}
		}},
		{"fewer fds than names", ErrMalformed, func(w int) []chunk { return []chunk{{two, []int{w}}} }},
		{"more fds than names", ErrMalformed, func(w int) []chunk { return []chunk{{runcMsg, []int{w, w}}} }},
		{"no fds", ErrMalformed, func(w int) []chunk { return []chunk{{runcMsg, nil}} }},
		{"pid 0", ErrMalformed, func(w int) []chunk {
			return []chunk{{strings.Replace(runcMsg, `"pid":3302,"state"`, `"pid":0,"state"`, 1), []int{w}}}
		}},
		{"no id", ErrMalformed, func(w int) []chunk {
			return []chunk{{strings.Replace(runcMsg, `"id":"t2",`, ``, 1), []int{w}}}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer noLeaks(t)()
			r, w := pipe(t)
			defer closeAll(r, w)
			h, err := exchange(t, recvSelf, func(p string) error { return send(p, c.msg(w)...) })
			if !errors.Is(err, c.want) || h != nil {
				t.Fatalf("got %v, %v; want %v", h, err, c.want)
			}
			t.Log(err)
		})
	}
}

func TestDeadline(t *testing.T) {
	for name, msg := range map[string]string{"silent": "", "stalled": runcMsg[:30]} {
		t.Run(name, func(t *testing.T) {
			defer noLeaks(t)()
			start := time.Now()
			h, err := exchange(t, func(c *net.UnixConn) (*Handoff, error) {
				return ReceiveFrom(c, time.Now().Add(200*time.Millisecond), asSelf)
			}, func(p string) error {
				c, err := net.Dial("unix", p)
				if err != nil {
					return err
				}
				defer c.Close()
				c.Write([]byte(msg))
				c.Read(make([]byte, 1)) // hold the connection until the receiver gives up
				return nil
			})
			if !errors.Is(err, os.ErrDeadlineExceeded) || h != nil {
				t.Fatalf("got %v, %v; want deadline exceeded", h, err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestPeerRefusedBeforeReading(t *testing.T) {
	defer noLeaks(t)()
	r, w := pipe(t)
	defer closeAll(r, w)
	var seen unix.Ucred
	h, err := exchange(t, func(c *net.UnixConn) (*Handoff, error) {
		_, err := ReceiveFrom(c, time.Now().Add(5*time.Second), func(u unix.Ucred) bool { seen = u; return false })
		if !errors.Is(err, ErrNotRoot) {
			t.Errorf("refusal: %v, want ErrNotRoot", err)
		}
		// The whole message is still there: nothing was read.
		return recvSelf(c)
	}, func(p string) error { return send(p, chunk{runcMsg, []int{w}}) })
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(h.SeccompFd)
	if seen.Pid != int32(os.Getpid()) || int(seen.Uid) != os.Geteuid() {
		t.Errorf("allow saw %+v, want this process", seen)
	}
}

func TestReceiveIsRootOnly(t *testing.T) {
	defer noLeaks(t)()
	r, w := pipe(t)
	defer closeAll(r, w)
	h, err := exchange(t, func(c *net.UnixConn) (*Handoff, error) {
		return Receive(c, time.Now().Add(5*time.Second))
	}, func(p string) error { return send(p, chunk{runcMsg, []int{w}}) })
	if os.Geteuid() != 0 {
		if !errors.Is(err, ErrNotRoot) {
			t.Fatalf("as uid %d: %v, want ErrNotRoot", os.Geteuid(), err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(h.SeccompFd)
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(runcMsg), uint8(1))
	f.Add([]byte(runcMsg), uint8(0))
	f.Add([]byte(runcMsg), uint8(2))
	f.Add([]byte(strings.Replace(runcMsg, `["seccompFd"]`, `["x","seccompFd","y"]`, 1)), uint8(3))
	f.Add([]byte(strings.Replace(runcMsg, `["seccompFd"]`, `["seccompFd","seccompFd"]`, 1)), uint8(2))
	f.Add([]byte(`{"ociVersion":"1.2.0","fds":["seccompFd"],"pid":1,"metadata":"m","state":{"id":"a","annotations":{"k":"v"}},"extra":[1,{}]}`), uint8(1))
	f.Add([]byte(`{"fds":null,"pid":-1,"state":null}`), uint8(0))
	f.Add([]byte(`null`), uint8(0))
	f.Fuzz(func(t *testing.T, payload []byte, nfds uint8) {
		fds := make([]int, int(nfds)%(MaxFds+2))
		for i := range fds {
			fds[i] = 1000 + i
		}
		h, err := Parse(payload, fds)
		if err != nil {
			if h != nil || !(errors.Is(err, ErrMalformed) || errors.Is(err, ErrNoSeccompFd)) {
				t.Fatalf("got %v, %v", h, err)
			}
			return
		}
		named := -1
		for i, n := range h.State.Fds {
			if n == specs.SeccompFdName {
				if named >= 0 {
					t.Fatalf("seccompFd named twice: %q", h.State.Fds)
				}
				named = i
			}
		}
		if named < 0 || len(h.State.Fds) != len(fds) || h.SeccompFd != fds[named] {
			t.Fatalf("SeccompFd %d from names %q and fds %v", h.SeccompFd, h.State.Fds, fds)
		}
		if h.State.Pid <= 0 || h.State.State.ID == "" {
			t.Fatalf("accepted pid %d id %q", h.State.Pid, h.State.State.ID)
		}
	})
}

func TestExec(t *testing.T) {
	for _, tc := range []struct {
		pid, statePid int
		exec          bool
	}{{42, 42, false}, {43, 42, true}, {42, 0, false}} {
		st := &specs.ContainerProcessState{Pid: tc.pid, State: specs.State{Pid: tc.statePid}}
		if got := Exec(st); got != tc.exec {
			t.Errorf("Exec(pid %d, state pid %d) = %v, want %v", tc.pid, tc.statePid, got, tc.exec)
		}
	}
}

// TestSendNeedsAck: Send succeeds only once the receiver acknowledges the
// hand-off; one that takes the message and closes without Ack (it ran out
// of fds, say) is a failed hand-off, so the holder keeps answering (review).
func TestSendNeedsAck(t *testing.T) {
	for _, ack := range []bool{true, false} {
		path := filepath.Join(t.TempDir(), "agent.sock")
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			defer c.Close()
			h, err := ReceiveFrom(c, time.Now().Add(5*time.Second), asSelf)
			if err != nil {
				return
			}
			unix.Close(h.SeccompFd)
			if ack {
				Ack(c)
			}
		}()
		var st specs.ContainerProcessState
		if err := json.Unmarshal([]byte(runcMsg), &st); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		err = Send(path, &st, fd, 2*time.Second)
		unix.Close(fd)
		if ack && err != nil {
			t.Errorf("acknowledged: %v", err)
		}
		if !ack && (err == nil || !strings.Contains(err.Error(), "did not take the hand-off")) {
			t.Errorf("not acknowledged: %v, want an error", err)
		}
	}
}
