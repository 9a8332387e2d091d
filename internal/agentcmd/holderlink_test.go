package agentcmd

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/pkg/notify"
)

// TestHolderLinkRedials: the holder's end of the control connection closes
// (it crashed); the agent logs it, redials, and counts the reconnection.
func TestHolderLinkRedials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "holder.ctl")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	logs := &lockedBuffer{}
	m := notify.NewMetrics()
	link, err := dialHolder(path, newLogger(logs), m)
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	first, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if !m.HolderConnected.Load() {
		t.Error("not connected after the dial")
	}
	first.Close() // the holder dies
	waitLog(t, logs, "holder connection lost", 5*time.Second)
	second, err := l.Accept() // the agent comes back to it
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	waitLog(t, logs, "connected to the holder again", 5*time.Second)
	if !m.HolderConnected.Load() || m.HolderReconnects.Load() != 1 {
		t.Errorf("connected %v, reconnects %d; want true, 1", m.HolderConnected.Load(), m.HolderReconnects.Load())
	}
}
