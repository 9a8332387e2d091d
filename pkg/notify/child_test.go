package notify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/internal/childtest"
)

// A real listener fd comes from internal/childtest's child process.
type child = childtest.Child

var (
	startChild   = childtest.Start
	handoffState = childtest.HandoffState
	pollFD       = childtest.PollFD
)

// wait bounds every blocking step, so a broken interaction fails the test
// instead of hanging it.
const wait = childtest.Wait

func TestMain(m *testing.M) {
	childtest.Main()
	// The first socket creates the netpoller's own fds; get that done before
	// any test counts open fds.
	if ln, err := net.Listen("unix", filepath.Join(os.TempDir(), fmt.Sprintf("notify-warmup-%d.sock", os.Getpid()))); err == nil {
		ln.Close()
	}
	os.Exit(m.Run())
}

// syncBuffer is safe for the audit writer goroutine and the test reading
// it at the same time.
type syncBuffer = childtest.SyncBuffer

// eventually polls cond until it holds or d passes.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}
