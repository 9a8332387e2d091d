package notify

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// AuditFile is the audit log's file, as an io.Writer for NewAuditLog where
// each Write is one record.
//
// Every line in it is a whole record: each is written with one write(2), and
// the part of a short write (a full disk) is truncated away, so the next
// record never gets glued to half of one. A failed write returns an error,
// which the AuditLog counts as a dropped record; the first failure of an
// episode and the return to normal are logged, once each.
//
// It follows logrotate: opened O_APPEND, so after copytruncate records go to
// the new end; and before each record it checks that the path still names
// the open file, reopening it if the file was renamed or deleted (a stat per
// record: records are bounded by the audit log's aggregation). Reopen does
// the same at once, for SIGHUP.
type AuditFile struct {
	path string
	log  *logrus.Entry

	mu      sync.Mutex
	f       *os.File
	partial bool   // a partial line could not be truncated: start the next on a new line
	failing bool   // in an episode of failed writes
	lost    uint64 // records lost in this episode
}

// OpenAuditFile opens (creating it 0640) the audit log at path; log gets
// its write failures (nil logs nothing).
func OpenAuditFile(path string, log *logrus.Logger) (*AuditFile, error) {
	a := &AuditFile{path: path, log: containerLog(log, nil).WithField("audit_log", path)}
	if err := a.reopen(); err != nil {
		return nil, err
	}
	return a, nil
}

// Write writes one record, p, whole or not at all.
func (a *AuditFile) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.follow()
	if err == nil {
		err = a.write(p)
	}
	if err != nil {
		if !a.failing {
			a.log.WithError(err).Error("audit log write failed: records are dropped, and counted in seccomp_agent_audit_dropped_total, until a write succeeds")
		}
		a.failing = true
		a.lost++
		return 0, fmt.Errorf("audit log %s: %w", a.path, err)
	}
	if a.failing {
		a.log.WithField("dropped", a.lost).Info("audit log writable again")
		a.failing, a.lost = false, 0
	}
	return len(p), nil
}

// Reopen opens the path again: after logrotate renamed the file, the
// agent writes to a new one at once rather than at its next record.
func (a *AuditFile) Reopen() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reopen()
}

// Close closes the file.
func (a *AuditFile) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.f.Close()
}

func (a *AuditFile) reopen() error {
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	if a.f != nil {
		a.f.Close()
	}
	a.f, a.partial = f, false
	return nil
}

// follow reopens the path if it no longer names the open file.
func (a *AuditFile) follow() error {
	var path, open unix.Stat_t
	if unix.Stat(a.path, &path) == nil && unix.Fstat(int(a.f.Fd()), &open) == nil && path.Dev == open.Dev && path.Ino == open.Ino {
		return nil
	}
	return a.reopen()
}

// write makes one write(2) of p: os.File.Write would loop on a short write
// and leave its first part in the file when the next fails.
func (a *AuditFile) write(p []byte) error {
	fd := int(a.f.Fd())
	if a.partial {
		if _, err := unix.Write(fd, []byte{'\n'}); err != nil {
			return err
		}
		a.partial = false
	}
	n, err := unix.Write(fd, p)
	if err == nil && n == len(p) {
		return nil
	}
	if err == nil {
		err = io.ErrShortWrite
	}
	if n > 0 {
		// Take the partial line back (O_APPEND: it is the file's end).
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil || unix.Ftruncate(fd, st.Size-int64(n)) != nil {
			a.partial = true
		}
	}
	return err
}
