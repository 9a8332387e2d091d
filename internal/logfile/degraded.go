package logfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DegradedFile, beside the agent's socket (audit.socket's directory: the
// agent's run directory, which its pod mounts), counts the containers
// created without the audit the policy asked for (no agent answered): they
// stay unaudited for life, and the shim that decided so is gone a
// millisecond later. The agent exports the count
// (seccomp_agent_degraded_creates_total); the node's log.file names each
// container. On a tmpfs, the count starts again at each boot, as the
// containers do.
const DegradedFile = "degraded.count"

// CountDegraded adds one to dir's DegradedFile, under an exclusive lock so
// that concurrent creates never lose a count. It makes no directory: where
// audit.socket's directory doesn't exist, no agent ever ran to export the
// count, and nothing is counted.
func CountDegraded(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, DegradedFile), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	buf := make([]byte, 32)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	count, _ := strconv.ParseUint(strings.TrimSpace(string(buf[:n])), 10, 64) // empty or garbage counts from 0
	next := []byte(strconv.FormatUint(count+1, 10) + "\n")
	if _, err := f.WriteAt(next, 0); err != nil {
		return err
	}
	return f.Truncate(int64(len(next)))
}

// Degraded reads dir's DegradedFile: 0 where there is none.
func Degraded(dir string) (uint64, error) {
	data, err := os.ReadFile(filepath.Join(dir, DegradedFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", filepath.Join(dir, DegradedFile), err)
	}
	return n, nil
}
