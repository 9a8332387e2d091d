package agentcmd

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/seccomp-shim/seccomp-shim/pkg/notify"
	"github.com/sirupsen/logrus"
)

// holderLink is the agent's control connection to the holder. While it is
// open the holder forwards every container's fd here; when it ends, the
// holder answers in the agent's place. A holder that crashed and came back
// knows nothing of this agent, and would answer every new container itself,
// unaudited: so the link is watched and redialled, and both are logged and
// in the metrics.
type holderLink struct {
	path    string
	log     *logrus.Entry
	metrics *notify.Metrics

	mu     sync.Mutex
	conn   net.Conn
	closed bool
	done   chan struct{}
}

// dialHolder connects to the holder at path, or fails: an agent started
// with --holder and no holder is misconfigured.
func dialHolder(path string, logger *logrus.Logger, m *notify.Metrics) (*holderLink, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("--holder %s: %w", path, err)
	}
	h := &holderLink{path: path, log: logger.WithField("holder", path), metrics: m, conn: conn, done: make(chan struct{})}
	m.HolderConnected.Store(true)
	h.log.Info("connected to the holder: it forwards containers' fds here")
	go h.keep()
	return h, nil
}

// keep waits for the connection to end, then redials, until Close.
func (h *holderLink) keep() {
	defer close(h.done)
	var b [1]byte
	for {
		h.mu.Lock()
		conn := h.conn
		h.mu.Unlock()
		conn.Read(b[:]) // returns when the holder goes away, or at Close
		conn.Close()
		if h.isClosed() {
			return
		}
		h.metrics.HolderConnected.Store(false)
		h.log.Error("holder connection lost: containers started from now on are answered by the holder alone, unaudited, until it is back; redialing")
		delay := 50 * time.Millisecond
		for {
			time.Sleep(delay)
			if h.isClosed() {
				return
			}
			c, err := net.Dial("unix", h.path)
			if err == nil {
				h.mu.Lock()
				h.conn = c
				closed := h.closed
				h.mu.Unlock()
				if closed {
					c.Close()
					return
				}
				break
			}
			delay = min(2*delay, 5*time.Second)
		}
		h.metrics.HolderConnected.Store(true)
		h.metrics.HolderReconnects.Add(1)
		// A new holder holds only what runc hands it from now on: the
		// containers this agent serves already keep their fds only here.
		h.log.Warn("connected to the holder again: new containers are forwarded and audited; those started before it restarted now depend on this agent (restarting it would leave them with ENOSYS)")
	}
}

func (h *holderLink) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// Close ends the link: the holder answers in the agent's place from here.
func (h *holderLink) Close() {
	h.mu.Lock()
	h.closed = true
	h.conn.Close()
	h.mu.Unlock()
	<-h.done
}
