package passthrough

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// CreateSocket is where the agent serves creates for the C fast path: a
// long-running process applies the policy, so a container start pays no Go
// start-up. Its directory is root's (0700). The C side has the same path.
const CreateSocket = "/run/seccomp-shim/shim.sock"

const createMagic = "seccomp-shim-create v1"

// Request is one create the C fast path asks the agent to prepare.
type Request struct {
	Cwd  string   // the shim's working directory (the default bundle)
	Exe  string   // the shim's executable, which must never be the runtime
	Env  []string // SECCOMP_SHIM_CONFIG and PATH, as the shim had them
	Args []string // the shim's argv, argv[0] included
}

// ParseRequest decodes the NUL-separated request the C side writes:
// magic, cwd, exe, the number of env entries, the entries, argc, argv.
func ParseRequest(b []byte) (*Request, error) {
	f := bytes.Split(bytes.TrimSuffix(b, []byte{0}), []byte{0})
	next := func() (string, error) {
		if len(f) == 0 {
			return "", errors.New("fastexec: short request")
		}
		s := string(f[0])
		f = f[1:]
		return s, nil
	}
	list := func() ([]string, error) {
		s, err := next()
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > len(f) {
			return nil, fmt.Errorf("fastexec: bad count %q", s)
		}
		out := make([]string, n)
		for i := range out {
			out[i], _ = next()
		}
		return out, nil
	}
	var r Request
	magic, err := next()
	if err != nil || magic != createMagic {
		return nil, fmt.Errorf("fastexec: not a create request")
	}
	if r.Cwd, err = next(); err != nil {
		return nil, err
	}
	if r.Exe, err = next(); err != nil {
		return nil, err
	}
	if r.Env, err = list(); err != nil {
		return nil, err
	}
	if r.Args, err = list(); err != nil {
		return nil, err
	}
	if len(r.Args) < 2 || len(f) != 0 {
		return nil, errors.New("fastexec: malformed request")
	}
	return &r, nil
}

// ServeCreates answers create requests from root peers on l: prepare
// applies the policy and returns the runtime to exec. The reply is
// "ok\x00RUNTIME" or "err\x00MESSAGE"; on anything but ok the C side falls
// back to the Go shim, which does the work again and reports the error
// where the engine reads it.
func ServeCreates(l *net.UnixListener, prepare func(*Request) (string, error)) error {
	for {
		conn, err := l.AcceptUnix()
		if err != nil {
			return err
		}
		go func() {
			defer conn.Close()
			reply := "err\x00"
			if rt, err := serveOne(conn, prepare); err != nil {
				reply += err.Error()
			} else {
				reply = "ok\x00" + rt
			}
			conn.SetWriteDeadline(time.Now().Add(3 * time.Second))
			conn.Write([]byte(reply + "\x00"))
		}()
	}
}

func serveOne(conn *net.UnixConn, prepare func(*Request) (string, error)) (string, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return "", err
	}
	var cred *unix.Ucred
	var cerr error
	raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if cerr != nil || cred.Uid != 0 {
		return "", errors.New("fastexec: peer is not root")
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(io.LimitReader(conn, 1<<20))
	if err != nil {
		return "", err
	}
	r, err := ParseRequest(b)
	if err != nil {
		return "", err
	}
	return prepare(r)
}
