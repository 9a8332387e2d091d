package notify

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

func testLogger(buf *syncBuffer) *logrus.Logger {
	return &logrus.Logger{Out: buf, Formatter: &logrus.TextFormatter{DisableTimestamp: true}, Hooks: logrus.LevelHooks{}, Level: logrus.DebugLevel}
}

// fileRecords reads an audit file, failing on any line that is not a
// record: a half-written one glued to the next, or NULs.
func fileRecords(t *testing.T, path string) []Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Errorf("%s: invalid line %q: %v", path, sc.Text(), err)
			continue
		}
		out = append(out, r)
	}
	return out
}

// denyEach records one denial for each of n containers: no aggregation.
func denyEach(a *AuditLog, prefix string, n int) {
	for i := range n {
		c := &Container{ID: fmt.Sprintf("%s-%03d-%s", prefix, i, strings.Repeat("x", 64))}
		deny(a, c, 250, "keyctl", time.Now())
	}
}

// TestAuditFileFull: on a full disk, records are dropped and counted, the
// failure is logged once, no partial line stays in the file, and writing
// resumes with valid lines once there is room.
func TestAuditFileFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tiny tmpfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	// Room for a few records, then the disk is full.
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 56<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.log")
	logs := &syncBuffer{}
	f, err := OpenAuditFile(path, testLogger(logs))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := NewAuditLog(f)
	denyEach(a, "full", 200) // about 60k of records
	a.Close()                // written, or failed and counted
	dropped := a.DroppedCount()
	written := len(fileRecords(t, path))
	if dropped == 0 || written == 0 || int(dropped)+written != 200 {
		t.Fatalf("with the disk full: %d records written and %d dropped, want a few written and the rest of 200 counted; log:\n%s", written, dropped, logs.String())
	}
	if n := strings.Count(logs.String(), "level=error"); n != 1 {
		t.Errorf("%d error lines for one episode, want 1:\n%s", n, logs.String())
	}
	os.Remove(filler) // room again
	a = NewAuditLog(f)
	denyEach(a, "room", 5)
	a.Close()
	if got := len(fileRecords(t, path)) - written; got != 5 || a.DroppedCount() != 0 {
		t.Errorf("%d records written and %d dropped after the disk had room, want 5 and 0", got, a.DroppedCount())
	}
	if !strings.Contains(logs.String(), "audit log writable again") {
		t.Errorf("no line says the audit log works again:\n%s", logs.String())
	}
}

// TestAuditFileRotation: logrotate's ways, each followed by the agent
// without a restart.
func TestAuditFileRotation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rotate func(t *testing.T, f *AuditFile, path string) (old string)
	}{
		{"rename and SIGHUP", func(t *testing.T, f *AuditFile, path string) string {
			mustRename(t, path, path+".1")
			if err := f.Reopen(); err != nil {
				t.Fatal(err)
			}
			return path + ".1"
		}},
		{"rename alone", func(t *testing.T, f *AuditFile, path string) string {
			mustRename(t, path, path+".1")
			return path + ".1"
		}},
		{"delete", func(t *testing.T, f *AuditFile, path string) string {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			return ""
		}},
		{"copytruncate", func(t *testing.T, f *AuditFile, path string) string {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path+".1", b, 0o640); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
			return path + ".1"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			f, err := OpenAuditFile(path, testLogger(&syncBuffer{}))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			line := func(id string) []byte { return []byte(`{"container":"` + id + `"}` + "\n") }
			if _, err := f.Write(line("before")); err != nil {
				t.Fatal(err)
			}
			old := tc.rotate(t, f, path)
			if _, err := f.Write(line("after")); err != nil {
				t.Fatal(err)
			}
			if old != "" {
				if recs := fileRecords(t, old); len(recs) != 1 || recs[0].Container != "before" {
					t.Errorf("rotated file holds %+v, want the record before", recs)
				}
			}
			if recs := fileRecords(t, path); len(recs) != 1 || recs[0].Container != "after" {
				t.Errorf("%s holds %+v, want the record after rotation alone", path, recs)
			}
		})
	}
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}
