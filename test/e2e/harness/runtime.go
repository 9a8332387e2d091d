package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Runtime drives a runc-compatible binary (runc itself or seccomp-shim) with
// the command lines containerd 1.6's runc shim uses.
type Runtime struct {
	Bin  string   // the runtime binary
	Root string   // private --root, e.g. t.TempDir()
	Env  []string // extra environment for the runtime, after os.Environ()
}

// Result is what a container left behind.
type Result struct {
	Stdout, Stderr string // the container's; Stderr also holds the runtime's own stderr
	ExitCode       int    // 128+signal when a signal killed the init, as containerd reports it
	LogFile        string // the runtime's --log file
}

// ExitTimeout bounds how long Run waits for a container's init before killing it.
const ExitTimeout = 30 * time.Second

// Command returns the runtime invoked with containerd's global flags; the
// --log file is <bundle>/log.json, as containerd puts it.
func (r *Runtime) Command(bundle string, args ...string) *exec.Cmd {
	global := []string{"--root", r.Root, "--log", logFile(bundle), "--log-format", "json"}
	cmd := exec.Command(r.Bin, append(global, args...)...)
	cmd.Env = append(os.Environ(), r.Env...)
	return cmd
}

func logFile(bundle string) string { return filepath.Join(bundle, "log.json") }

// Create runs `create`, writing the init's pid to <bundle>/init.pid. Without a
// console socket the init inherits create's stdout and stderr, so they are
// files (<bundle>/stdout, <bundle>/stderr): with pipes, waiting for create
// would last as long as the container.
func (r *Runtime) Create(id, bundle string) error {
	if err := becomeSubreaper(); err != nil {
		return err
	}
	stdout, err := os.Create(filepath.Join(bundle, "stdout"))
	if err != nil {
		return err
	}
	defer stdout.Close()
	stderr, err := os.Create(filepath.Join(bundle, "stderr"))
	if err != nil {
		return err
	}
	defer stderr.Close()
	cmd := r.Command(bundle, "create", "--bundle", bundle, "--pid-file", filepath.Join(bundle, "init.pid"), id)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(stderr.Name())
		return failed(cmd, bundle, err, out)
	}
	return nil
}

// Start runs `start`.
func (r *Runtime) Start(id, bundle string) error { return r.run(bundle, "start", id) }

// Delete runs `delete --force`, which also kills a container still running.
func (r *Runtime) Delete(id, bundle string) error { return r.run(bundle, "delete", "--force", id) }

func (r *Runtime) run(bundle string, args ...string) error {
	cmd := r.Command(bundle, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return failed(cmd, bundle, err, out)
	}
	return nil
}

// failed quotes both places a runtime reports errors: engines show only the
// log file, a shell user sees only stderr.
func failed(cmd *exec.Cmd, bundle string, err error, output []byte) error {
	log, _ := os.ReadFile(logFile(bundle))
	return fmt.Errorf("%s: %v\noutput: %s\nlog.json: %s", strings.Join(cmd.Args, " "), err, output, log)
}

// Run creates, starts, waits for and deletes container id, like containerd.
// The Result is never nil; on error it holds what could be collected.
func (r *Runtime) Run(t testing.TB, id, bundle string) (*Result, error) {
	t.Helper()
	res := &Result{ExitCode: -1, LogFile: logFile(bundle)}
	defer res.collect(bundle)
	if err := r.Create(id, bundle); err != nil {
		_ = r.Delete(id, bundle) // usually "does not exist"; it only must not leak
		return res, err
	}
	err := r.Start(id, bundle)
	started := err == nil
	if started {
		res.ExitCode, err = Wait(bundle)
	}
	derr := r.Delete(id, bundle)
	if !started { // delete killed the init, which is still ours to reap
		_, _ = Wait(bundle)
	}
	return res, errors.Join(err, derr)
}

// Wait reaps the init of the container created in bundle and returns its exit
// code. After ExitTimeout it kills the init and returns an error.
func Wait(bundle string) (int, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "init.pid"))
	if err != nil {
		return -1, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1, fmt.Errorf("init.pid: %w", err)
	}
	return reap(pid, ExitTimeout)
}

func (res *Result) collect(bundle string) {
	out, _ := os.ReadFile(filepath.Join(bundle, "stdout"))
	errOut, _ := os.ReadFile(filepath.Join(bundle, "stderr"))
	res.Stdout, res.Stderr = string(out), string(errOut)
}

var subreaper struct {
	once sync.Once
	err  error
}

// becomeSubreaper makes the container's init a child of this process once
// `runc create` exits (runc clones the init with CLONE_PARENT, so it is create's
// child until then), as it becomes the shim's, so its exit status can be read.
func becomeSubreaper() error {
	subreaper.once.Do(func() {
		subreaper.err = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	})
	return subreaper.err
}

// reap waits for pid alone: other orphans reparented to us, and children
// os/exec waits for, are not ours to take. It polls because the init may not
// be reparented yet (ECHILD) and so a timeout needs no extra goroutine.
func reap(pid int, timeout time.Duration) (int, error) {
	deadline, killed := time.Now().Add(timeout), false
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if err != nil && err != unix.ECHILD && err != unix.EINTR {
			return -1, fmt.Errorf("wait4 %d: %w", pid, err)
		}
		if wpid == pid {
			code := ws.ExitStatus()
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
			if killed {
				return code, fmt.Errorf("container init %d did not exit within %v; killed it", pid, timeout)
			}
			return code, nil
		}
		if time.Now().After(deadline) {
			if killed {
				return -1, fmt.Errorf("container init %d: not reaped after SIGKILL", pid)
			}
			_ = unix.Kill(pid, unix.SIGKILL)
			deadline, killed = time.Now().Add(5*time.Second), true
		}
		time.Sleep(5 * time.Millisecond)
	}
}
