package notify

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The audit log's format is an interface: docs/agent.md shows it and the
// summary subcommand and users' tools parse it.
func TestRecordJSONKeys(t *testing.T) {
	r := Record{
		Time: "2026-11-27T05:15:30.627231458Z", Container: "demo",
		Name: "web", Pod: "web-7f9c", Namespace: "shop", Image: "example.com/web:1.2",
		Pid: 23630, Tid: 23631, Comm: "probe", Exe: "/bin/probe", UID: 0,
		Arch: "x86_64", Syscall: "keyctl", Nr: 250, Args: [6]uint64{1, 2, 3, 4, 5, 6},
		Action: "errno", Errno: 1, Rule: "profile default",
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"time": "2026-11-27T05:15:30.627231458Z", "container": "demo",
		"name": "web", "pod": "web-7f9c", "namespace": "shop", "image": "example.com/web:1.2",
		"pid": 23630.0, "tid": 23631.0, "comm": "probe", "exe": "/bin/probe", "uid": 0.0,
		"arch": "x86_64", "syscall": "keyctl", "nr": 250.0, "args": []any{1.0, 2.0, 3.0, 4.0, 5.0, 6.0},
		"action": "errno", "errno": 1.0, "rule": "profile default",
	}
	for k, v := range want {
		if !jsonEqual(got[k], v) {
			t.Errorf("key %q = %#v, want %#v", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected key %q in a full record", k)
		}
	}

	// Outside Kubernetes the CRI fields are left out, never empty strings;
	// uid 0 and pid stay, since 0 is a real uid.
	b, _ = json.Marshal(Record{Container: "c", Arch: "x86_64", Syscall: "keyctl", Action: "errno", Errno: 1})
	got = nil
	json.Unmarshal(b, &got)
	keys := slices.Sorted(maps.Keys(got))
	if w := []string{"action", "arch", "args", "container", "errno", "nr", "pid", "syscall", "tid", "time", "uid"}; !slices.Equal(keys, w) {
		t.Errorf("minimal record keys %q, want %q", keys, w)
	}

	agg := r
	agg.Count, agg.First, agg.Last = 7, "2026-11-27T05:15:30Z", "2026-11-27T05:15:31Z"
	b, _ = json.Marshal(agg)
	got = nil
	json.Unmarshal(b, &got)
	if got["count"] != 7.0 || got["first"] != agg.First || got["last"] != agg.Last {
		t.Errorf("aggregate keys: %s", b)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// lines returns the JSON lines written so far, decoded.
func lines(t *testing.T, buf *syncBuffer) []Record {
	t.Helper()
	var out []Record
	for _, l := range strings.Split(buf.String(), "\n") {
		if l == "" {
			continue
		}
		var r Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, r)
	}
	return out
}

// deny records one denial the way Server.answer does, without a kernel:
// fd -1 makes the caller's identity unknown (pid 0, uid -1).
func deny(a *AuditLog, c *Container, nr int32, name string, now time.Time) {
	r := x64(c, nr, name, 1, 2, 3)
	a.Record(c, r.Fd, r.Notif, r, Decision{Errno: uint(unix.EPERM), Rule: "profile p"}, now)
}

func TestAuditCRIAnnotations(t *testing.T) {
	buf := &syncBuffer{}
	a := NewAuditLog(buf)
	containerd := &Container{ID: "a", Annotations: criAnnotations}
	crio := &Container{ID: "b", Annotations: map[string]string{
		"io.kubernetes.cri-o.ContainerType": "container",
		"io.kubernetes.container.name":      "db",
		"io.kubernetes.pod.name":            "db-0",
		"io.kubernetes.pod.namespace":       "data",
		"io.kubernetes.cri-o.ImageName":     "example.com/db:9",
	}}
	now := time.Now()
	deny(a, containerd, 250, "keyctl", now)
	deny(a, crio, 250, "keyctl", now)
	a.Close()
	recs := lines(t, buf)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	for _, tc := range []struct {
		r                        Record
		id, name, pod, ns, image string
	}{
		{recs[0], "a", "web", "web-7f9c", "shop", "example.com/web:1.2"},
		{recs[1], "b", "db", "db-0", "data", "example.com/db:9"},
	} {
		r := tc.r
		if r.Container != tc.id || r.Name != tc.name || r.Pod != tc.pod || r.Namespace != tc.ns || r.Image != tc.image {
			t.Errorf("record %+v: want container %s name %s pod %s namespace %s image %s", r, tc.id, tc.name, tc.pod, tc.ns, tc.image)
		}
		if r.Time != now.UTC().Format(time.RFC3339Nano) || r.Syscall != "keyctl" || r.Nr != 250 || r.Arch != "x86_64" ||
			r.Args != [6]uint64{1, 2, 3} || r.Action != "errno" || r.Errno != uint(unix.EPERM) || r.Rule != "profile p" || r.Tid != 1 {
			t.Errorf("record %+v", r)
		}
		// The caller could not be checked (no valid notification), so
		// nothing about it may be claimed; uid -1, not root.
		if r.Pid != 0 || r.Comm != "" || r.Exe != "" || r.UID != -1 {
			t.Errorf("unverified caller in record: pid %d comm %q exe %q uid %d", r.Pid, r.Comm, r.Exe, r.UID)
		}
	}
}

func TestAuditAggregation(t *testing.T) {
	buf := &syncBuffer{}
	a := NewAuditLog(buf)
	// Set before the first Record: the writer reads them under a.mu, which
	// Record takes first.
	a.PerKey, a.Window = 3, 300*time.Millisecond
	flood := &Container{ID: "flood"}
	quiet := &Container{ID: "quiet"}
	start := time.Now()
	var times []time.Time
	for i := range 10 {
		now := start.Add(time.Duration(i) * time.Millisecond)
		times = append(times, now)
		deny(a, flood, 250, "keyctl", now)
		if i < 2 {
			deny(a, quiet, 250, "keyctl", now)
		}
	}
	deny(a, flood, 165, "mount", start)

	full := func(c string, s string) int {
		n := 0
		for _, r := range lines(t, buf) {
			if r.Container == c && r.Syscall == s && r.Count == 0 {
				n++
			}
		}
		return n
	}
	if !eventually(time.Second, func() bool {
		return full("flood", "keyctl") == 3 && full("quiet", "keyctl") == 2 && full("flood", "mount") == 1
	}) {
		t.Fatalf("full records: flood/keyctl %d (want 3), quiet/keyctl %d (want 2), flood/mount %d (want 1):\n%s",
			full("flood", "keyctl"), full("quiet", "keyctl"), full("flood", "mount"), buf.String())
	}
	// The writer flushes ended windows once a second.
	var agg []Record
	if !eventually(3*time.Second, func() bool {
		agg = nil
		for _, r := range lines(t, buf) {
			if r.Count > 0 {
				agg = append(agg, r)
			}
		}
		return len(agg) > 0
	}) {
		t.Fatalf("no aggregate record after the window:\n%s", buf.String())
	}
	a.Close()
	recs := lines(t, buf)
	if len(recs) != 3+2+1+1 {
		t.Errorf("%d records, want 7 (3+2+1 full, 1 aggregate):\n%s", len(recs), buf.String())
	}
	if len(agg) != 1 {
		t.Fatalf("%d aggregate records, want 1: %+v", len(agg), agg)
	}
	g := agg[0]
	if g.Container != "flood" || g.Syscall != "keyctl" || g.Count != 7 {
		t.Errorf("aggregate %+v: want flood/keyctl count 7", g)
	}
	first, err1 := time.Parse(time.RFC3339Nano, g.First)
	last, err2 := time.Parse(time.RFC3339Nano, g.Last)
	if err1 != nil || err2 != nil {
		t.Fatalf("first %q last %q: %v %v", g.First, g.Last, err1, err2)
	}
	// First is the window's start (implementation) or the first counted
	// denial; either way no later than that and no earlier than the flood.
	if first.Before(times[0]) || first.After(times[3]) {
		t.Errorf("first = %v, want between %v and %v", first, times[0], times[3])
	}
	if !last.Equal(times[9]) {
		t.Errorf("last = %v, want the tenth denial's %v", last, times[9])
	}
	if g.Time < g.Last {
		t.Errorf("aggregate written at %s, before its last denial %s", g.Time, g.Last)
	}
	// A full record of an unverified caller says uid -1; an aggregate must
	// not turn that into root.
	t.Run("aggregate identity", func(t *testing.T) {
		if g.UID == 0 && g.Pid == 0 {
			t.Fatal("regression: audit.go Record stores suppressed records in g.last before procInfo runs, so an aggregate carries pid 0 and uid 0 (root) for any caller; set rec.UID = -1 (or keep the last full record's identity) for suppressed records")
		}
		if g.UID != -1 && g.Pid == 0 {
			t.Errorf("aggregate claims uid %d for an unverified caller", g.UID)
		}
	})
}

func TestAuditCloseFlushes(t *testing.T) {
	buf := &syncBuffer{}
	a := NewAuditLog(buf)
	a.PerKey, a.Window = 3, time.Hour
	c := &Container{ID: "c"}
	now := time.Now()
	for i := range 10 {
		deny(a, c, 250, "keyctl", now.Add(time.Duration(i)*time.Millisecond))
	}
	a.Close()
	recs := lines(t, buf)
	if len(recs) != 4 || recs[3].Count != 7 {
		t.Fatalf("after Close: %d records, want 3 full and an aggregate of 7:\n%s", len(recs), buf.String())
	}
	for _, r := range recs[:3] {
		if r.Count != 0 {
			t.Errorf("aggregate before the full records: %+v", r)
		}
	}
}

func TestAuditVolumeBounded(t *testing.T) {
	buf := &syncBuffer{}
	a := NewAuditLog(buf)
	a.PerKey, a.Window = 3, time.Hour
	cs := []*Container{{ID: "a"}, {ID: "b"}}
	now := time.Now()
	const n = 20000
	for i := range n {
		deny(a, cs[i%2], 250, "keyctl", now)
	}
	a.Close()
	recs := lines(t, buf)
	if len(recs) != 2*(3+1) {
		t.Fatalf("%d denials gave %d records, want %d", n, len(recs), 2*(3+1))
	}
	total := 0
	for _, r := range recs {
		total += max(r.Count, 1)
	}
	if total != n {
		t.Errorf("records account for %d denials, want %d", total, n)
	}
	if d := a.DroppedCount(); d != 0 {
		t.Errorf("dropped %d", d)
	}
}

// blockingWriter holds the writer goroutine until released.
type blockingWriter struct {
	release chan struct{}
	buf     syncBuffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	return w.buf.Write(p)
}

func TestAuditSlowWriterDropsInsteadOfBlocking(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{})}
	a := NewAuditLog(w)
	now := time.Now()
	const n = 6000 // over the queue's 4096
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			deny(a, &Container{ID: fmt.Sprint("c", i)}, 250, "keyctl", now)
		}
	}()
	select {
	case <-done:
	case <-time.After(wait):
		close(w.release)
		t.Fatal("Record blocked behind a stuck writer")
	}
	dropped := a.DroppedCount()
	close(w.release)
	a.Close()
	written := strings.Count(w.buf.String(), "\n")
	if dropped == 0 || uint64(written)+dropped != n {
		t.Errorf("%d written + %d dropped, want %d in all with some dropped", written, dropped, n)
	}
}
