package agentcmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/internal/childtest"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/urfave/cli/v2"
)

type tableRow struct {
	count             int
	first, last, rule string
}

// parseSummary reads summary's table back, checking its header and order.
func parseSummary(t *testing.T, out string) (map[[2]string]tableRow, [][2]string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || strings.Join(strings.Fields(lines[0]), " ") != "CONTAINER NAME POD NAMESPACE SYSCALL ACTION COUNT FIRST LAST RULE" {
		t.Fatalf("summary header: %q", out)
	}
	rows := map[[2]string]tableRow{}
	var order [][2]string
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 10 { // the rule may hold spaces
			t.Fatalf("summary line %q", l)
		}
		n, err := strconv.Atoi(f[6])
		if err != nil {
			t.Fatalf("summary line %q: %v", l, err)
		}
		k := [2]string{f[0], f[4]}
		if _, dup := rows[k]; dup {
			t.Errorf("%v listed twice", k)
		}
		rows[k] = tableRow{n, f[7], f[8], strings.Join(f[9:], " ")}
		order = append(order, k)
	}
	return rows, order
}

func runMain(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = Main(args, &o, &e)
	return code, o.String(), e.String()
}

func TestSummary(t *testing.T) {
	code, out, errOut := runMain("summary", "testdata/audit.log")
	if code != 0 {
		t.Fatalf("summary exit %d: %s", code, errOut)
	}
	rows, order := parseSummary(t, out)
	// Full records count one each, aggregates their count; the line that is
	// not JSON is skipped.
	want := map[[2]string]int{
		{"web", "keyctl"}: 3 + 7 + 1,
		{"web", "mount"}:  1,
		{"db", "keyctl"}:  2,
		{"db", "ptrace"}:  5,
	}
	if len(rows) != len(want) {
		t.Errorf("%d rows, want %d:\n%s", len(rows), len(want), out)
	}
	for k, n := range want {
		if rows[k].count != n {
			t.Errorf("%s/%s: %d denied, want %d", k[0], k[1], rows[k].count, n)
		}
	}
	// By container, then the most denied first.
	wantOrder := [][2]string{{"db", "ptrace"}, {"db", "keyctl"}, {"web", "keyctl"}, {"web", "mount"}}
	if fmt.Sprint(order) != fmt.Sprint(wantOrder) {
		t.Errorf("order %v, want %v", order, wantOrder)
	}
	for k, w := range map[[2]string]tableRow{
		// An aggregate's own first reaches back to its window's start.
		{"web", "keyctl"}: {11, "2026-11-27T05:00:00.100000001Z", "2026-11-27T05:00:20.700000007Z", "profile default"},
		{"web", "mount"}:  {1, "2026-11-27T05:00:01.400000004Z", "2026-11-27T05:00:01.400000004Z", "profile default"},
		{"db", "keyctl"}:  {2, "2026-11-27T05:01:00.100000001Z", "2026-11-27T05:01:00.200000002Z", "profile default"},
		{"db", "ptrace"}:  {5, "2026-11-27T05:02:00.100000001Z", "2026-11-27T05:02:01.200000002Z", "no ptrace"},
	} {
		if rows[k] != w {
			t.Errorf("%s/%s = %+v, want %+v", k[0], k[1], rows[k], w)
		}
	}

	t.Run("last of an aggregate", func(t *testing.T) {
		got := rows[[2]string{"db", "ptrace"}]
		if got.first != "2026-11-27T05:02:00.100000001Z" {
			t.Errorf("db/ptrace first %s, want the aggregate's first", got.first)
		}
		const last, written = "2026-11-27T05:02:01.200000002Z", "2026-11-27T05:02:10.900000009Z"
		if got.last == written {
			t.Fatal("regression: agent.go summary takes an aggregate record's time (when it was written, up to a window later) as its last denial; use r.Last when r.Count > 0")
		}
		if got.last != last {
			t.Errorf("db/ptrace last %s, want the aggregate's last %s", got.last, last)
		}
	})
	t.Run("whole seconds", func(t *testing.T) {
		code, out, errOut := runMain("summary", "testdata/whole-seconds.log")
		if code != 0 {
			t.Fatalf("summary exit %d: %s", code, errOut)
		}
		rows, _ := parseSummary(t, out)
		got := rows[[2]string{"c", "keyctl"}]
		want := tableRow{2, "2026-11-27T06:00:00Z", "2026-11-27T06:00:00.5Z", "-"}
		if got == (tableRow{2, want.last, want.first, want.rule}) {
			t.Fatal(`regression: agent.go summary orders times as strings, but RFC3339Nano drops trailing zeros, so "06:00:00Z" sorts after "06:00:00.5Z"; parse them with time.Parse(time.RFC3339Nano, ...) and compare time.Time`)
		}
		if got != want {
			t.Errorf("c/keyctl = %+v, want %+v", got, want)
		}
	})
}

func TestSummaryUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"summary", "a", "b"}, 2, "usage:"},
		{[]string{"summary", "--format", "xml", "a"}, 2, "--format"},
		{[]string{"summary", "a", "--json"}, 2, "flag --json after the AUDIT-LOG: flags go before it"},
		{[]string{"summary", filepath.Join(t.TempDir(), "missing.log")}, 1, "no such file"},
	} {
		code, out, errOut := runMain(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) || out != "" {
			t.Errorf("Main(%q) = %d, stdout %q, stderr %q; want %d and %q", tc.args, code, out, errOut, tc.code, tc.msg)
		}
	}
}

// TestSummaryKubernetes: 64-hex ids keep the columns aligned; the name,
// pod and namespace are shown where the records have them; continue
// records (audit = true rules) are counted apart from denials; --json and
// --format json give the same rows as JSON.
func TestSummaryKubernetes(t *testing.T) {
	code, out, errOut := runMain("summary", "testdata/kubernetes.log")
	if code != 0 {
		t.Fatalf("summary exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want a header and 3 rows:\n%s", len(lines), out)
	}
	for _, col := range []string{"NAME", "POD", "NAMESPACE", "SYSCALL", "ACTION", "COUNT", "FIRST", "LAST", "RULE"} {
		at := strings.Index(lines[0], col)
		for _, l := range lines[1:] {
			if at >= len(l) || l[at] == ' ' || l[at-1] != ' ' {
				t.Errorf("column %s (at %d) not aligned:\n%s", col, at, out)
				break
			}
		}
	}
	hex := strings.Repeat("a", 64)
	for _, want := range [][]string{
		{hex, "nginx", "web-7d4b9c-x2x8q", "shop", "keyctl", "errno", "2", "2026-11-27T07:00:00.1Z", "2026-11-27T07:00:00.2Z", "engine profile (kept)"},
		{strings.Repeat("0123456789abcdef", 4), "sidecar", "web-7d4b9c-x2x8q", "shop", "personality", "continue", "1", "2026-11-27T07:00:01Z", "2026-11-27T07:00:01Z", "allow personality"},
		{"plain", "-", "-", "-", "mount", "errno", "1", "2026-11-27T07:00:02Z", "2026-11-27T07:00:02Z", "profile default"},
	} {
		found := false
		for _, l := range lines[1:] {
			found = found || strings.Join(strings.Fields(l), " ") == strings.Join(want, " ")
		}
		if !found {
			t.Errorf("no row %q:\n%s", want, out)
		}
	}
	for _, args := range [][]string{{"summary", "--json", "testdata/kubernetes.log"}, {"summary", "--format", "json", "testdata/kubernetes.log"}} {
		code, out, errOut := runMain(args...)
		if code != 0 {
			t.Fatalf("%q exit %d: %s", args, code, errOut)
		}
		var rows []map[string]any
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("%q: not JSON: %v\n%s", args, err, out)
		}
		if len(rows) != 3 {
			t.Fatalf("%q: %d rows, want 3:\n%s", args, len(rows), out)
		}
		r := rows[1] // by container: 0123… sorts first
		if r["container"] != hex || r["name"] != "nginx" || r["pod"] != "web-7d4b9c-x2x8q" || r["namespace"] != "shop" ||
			r["syscall"] != "keyctl" || r["action"] != "errno" || r["count"] != float64(2) || r["first"] != "2026-11-27T07:00:00.1Z" || r["last"] != "2026-11-27T07:00:00.2Z" ||
			r["rule"] != "engine profile (kept)" {
			t.Errorf("%q: first row %v", args, r)
		}
	}
}

// TestSummaryDefaultPath: summary reads where serve writes by default.
func TestSummaryDefaultPath(t *testing.T) {
	var serveDefault string
	for _, f := range serveFlags() {
		if sf, ok := f.(*cli.StringFlag); ok && sf.Name == "audit-log" {
			serveDefault = sf.Value
		}
	}
	if serveDefault != DefaultAuditLog {
		t.Errorf("serve's --audit-log default %q, summary's %q", serveDefault, DefaultAuditLog)
	}
	code, out, _ := runMain("summary", "--help")
	if code != 0 || !strings.Contains(out, DefaultAuditLog) {
		t.Errorf("summary --help = %d, %q: want the default path named", code, out)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"-socket"}, // a value is missing
		{"--audit-stdout=maybe"},
		{"hold", "--no-such-flag"},
		{"--socket", "x", "hold"}, // serve's flag: hold would ignore it
		{"--audit-log", "x", "summary", "testdata/audit.log"},
	} {
		code, out, errOut := runMain(args...)
		if code != 2 {
			t.Errorf("Main(%q) = %d, want 2", args, code)
		}
		if out != "" || errOut == "" {
			t.Errorf("Main(%q): stdout %q, stderr %q; want the problem on stderr only", args, out, errOut)
		}
	}
	// -h is not an error: the usage on stdout, exit 0, and no agent started.
	if code, out, _ := runMain("-h"); code != 0 || !strings.Contains(out, "--socket") {
		t.Errorf("Main(-h) = %d, stdout %q; want 0 and the usage", code, out)
	}
}

// writeConfig writes a config with n notify rules and names it the config
// to load, for this test only.
func writeConfig(t *testing.T, path string, n int) {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "[[notify.rule]]\nname = \"r%d\"\nsyscalls = [\"keyctl\"]\naction = \"errno\"\nerrno = %d\n\n", i, i+1)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRefusesSecondAgent(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "agent.sock")
	if err := os.MkdirAll(filepath.Dir(sock), 0o700); err != nil {
		t.Fatal(err)
	}
	live, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	cfg := filepath.Join(dir, "config.toml")
	writeConfig(t, cfg, 1)
	t.Setenv(policy.ConfigEnv, "") // Main sets it from --config; restore it after

	done := make(chan int, 1)
	var out, errOut bytes.Buffer
	go func() {
		done <- Main([]string{"--socket", sock, "--audit-log", filepath.Join(dir, "log", "audit.log"), "--metrics", "", "--config", cfg}, &out, &errOut)
	}()
	var code int
	select {
	case code = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a second agent started serving instead of refusing")
	}
	if code != 1 || !strings.Contains(errOut.String(), "another agent is listening") {
		t.Errorf("Main = %d, stderr %q; want 1 and \"another agent is listening\"", code, errOut.String())
	}
	// The live agent keeps its socket: nothing was removed or replaced.
	live.SetDeadline(time.Now().Add(5 * time.Second))
	go func() {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
		}
	}()
	c, err := live.Accept()
	if err != nil {
		t.Fatalf("the live agent no longer gets connections: %v", err)
	}
	c.Close()
}

// lockedBuffer lets the test read what the agent's logger writes meanwhile.
type lockedBuffer = childtest.SyncBuffer

func waitLog(t *testing.T, l *lockedBuffer, s string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(l.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the agent's log:\n%s", s, l.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRunLifecycle runs the agent for real: it replaces a stale socket,
// reloads its policy on SIGHUP and on a changed file, keeps the old policy
// when the new one is invalid, and stops on SIGTERM. The signals go to this
// test process, which run has subscribed to them by the time it logs
// "listening".
func TestRunLifecycle(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "agent.sock")
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	// A stale socket file, as a crashed agent leaves it.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	cfg := filepath.Join(dir, "config.toml")
	writeConfig(t, cfg, 1)
	t.Setenv(policy.ConfigEnv, "")
	auditLog := filepath.Join(dir, "log", "audit.log")

	logs := &lockedBuffer{}
	done := make(chan int, 1)
	// Every path is the test's own: the defaults are the host's /run and
	// /var/log.
	go func() {
		done <- Main([]string{"--socket", sock, "--audit-log", auditLog, "--metrics", "", "--config", cfg}, &bytes.Buffer{}, logs)
	}()
	waitLog(t, logs, "msg=listening audit_log="+auditLog+" metrics= socket="+sock, 10*time.Second)
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("the stale socket was not replaced: %v", err)
	}
	c.Close()
	// Not ours: an existing directory (as /run is) keeps its mode.
	if fi, err := os.Stat(filepath.Dir(sock)); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("socket directory mode %v (%v), want 0755 as it was", fi.Mode().Perm(), err)
	}
	if _, err := os.Stat(auditLog); err != nil {
		t.Errorf("audit log not created: %v", err)
	}

	if err := os.WriteFile(cfg, []byte("[[notify.rule]]\naction = \"sometimes\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitLog(t, logs, "new policy rejected, the old one stays in force", 5*time.Second)

	// logrotate's create mode: rename, then SIGHUP; a new file at once.
	if err := os.Rename(auditLog, auditLog+".1"); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, cfg, 2)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitLog(t, logs, `msg="policy reloaded" config=`+cfg+" notify_rules=2", 5*time.Second)
	waitLog(t, logs, `msg="audit log reopened" audit_log=`+auditLog, 5*time.Second)
	if _, err := os.Stat(auditLog); err != nil {
		t.Errorf("no new audit log after rename and SIGHUP: %v", err)
	}

	// No signal this time: the agent notices the file changed (checked every
	// 2 s).
	writeConfig(t, cfg, 3)
	waitLog(t, logs, `msg="policy reloaded" config=`+cfg+" notify_rules=3", 6*time.Second)

	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("Main after SIGTERM = %d, want 0; log:\n%s", code, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the agent did not stop on SIGTERM; log:\n%s", logs.String())
	}
	for _, line := range []string{"msg=stopping signal=terminated", "msg=stopped"} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("no %q in the agent's log: it must say why it stops:\n%s", line, logs.String())
		}
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket %s left behind after SIGTERM: %v", sock, err)
	}
}

// TestListenDirectory: a directory listen creates is root-only; one that
// exists (/run) keeps its mode; one others could write is refused, unless
// sticky (/tmp), which is only warned about.
func TestListenDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("directory ownership checks are for root's agent")
	}
	dir := t.TempDir()
	mkdir := func(name string, mode os.FileMode) string {
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
		return d
	}
	mode := func(d string) os.FileMode {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode() & (os.ModePerm | os.ModeSticky)
	}
	for _, tc := range []struct {
		name    string
		dir     string
		mode    os.FileMode // after listen
		err     string
		warning string
	}{
		{"created", filepath.Join(dir, "new", "run"), 0o700, "", ""},
		{"like /run", mkdir("run", 0o755), 0o755, "", ""},
		{"world-writable", mkdir("shared", 0o777), 0o777, "world- or group-writable", ""},
		{"group-writable", mkdir("group", 0o775), 0o775, "world- or group-writable", ""},
		{"sticky like /tmp", mkdir("tmp", 0o777|os.ModeSticky), 0o777 | os.ModeSticky, "", "sticky"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &lockedBuffer{}
			l, err := listen(filepath.Join(tc.dir, "agent.sock"), "--socket", newLogger(logs))
			if l != nil {
				l.Close()
			}
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("listen: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tc.dir)):
				t.Errorf("listen: %v, want an error naming %s and saying %q", err, tc.dir, tc.err)
			}
			if tc.warning != "" && !strings.Contains(logs.String(), tc.warning) {
				t.Errorf("no warning saying %q:\n%s", tc.warning, logs.String())
			}
			if tc.warning == "" && strings.Contains(logs.String(), "level=warn") {
				t.Errorf("unexpected warning:\n%s", logs.String())
			}
			if got := mode(tc.dir); got != tc.mode {
				t.Errorf("directory mode %v after listen, want %v", got, tc.mode)
			}
		})
	}
}

// TestHoldStops: the holder says why it stops.
func TestHoldStops(t *testing.T) {
	dir := t.TempDir()
	logs := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main([]string{"hold", "--socket", filepath.Join(dir, "agent.sock"), "--agent", filepath.Join(dir, "agent.private.sock"), "--control", filepath.Join(dir, "holder.ctl")}, &bytes.Buffer{}, logs)
	}()
	waitLog(t, logs, "holding the fds handed to socket", 10*time.Second)
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("hold after SIGTERM = %d, want 0; log:\n%s", code, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the holder did not stop on SIGTERM; log:\n%s", logs.String())
	}
	for _, line := range []string{"msg=stopping signal=terminated", "msg=stopped"} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("no %q in the holder's log:\n%s", line, logs.String())
		}
	}
}

type fullDisk struct{}

func (fullDisk) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

// TestTeeFullDisk: with --audit-stdout, a record the file can't take still
// reaches stdout, and the failure is reported for the dropped count.
func TestTeeFullDisk(t *testing.T) {
	var out bytes.Buffer
	if _, err := (tee{fullDisk{}, &out}).Write([]byte("{}\n")); err == nil || out.String() != "{}\n" {
		t.Errorf("tee to a full disk: error %v, stdout %q; want ENOSPC and the record on stdout", err, out.String())
	}
}

// TestSummaryRule: the RULE column tells a recording's records, a
// profile's would-be denials and real denials apart, each its own row.
func TestSummaryRule(t *testing.T) {
	log := filepath.Join(t.TempDir(), "audit.log")
	var lines string
	for _, r := range [][3]string{
		{"c", "complain", "recording:web"},
		{"c", "complain", "profile web-v1"},
		{"c", "complain", "profile web-v1"},
		{"c", "errno", "profile web-v1"},
	} {
		lines += fmt.Sprintf(`{"time":"2026-11-30T01:00:00Z","container":%q,"arch":"x86_64","syscall":"keyctl","nr":250,"action":%q,"rule":%q}`+"\n", r[0], r[1], r[2])
	}
	if err := os.WriteFile(log, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runMain("summary", log)
	if code != 0 {
		t.Fatalf("summary exit %d: %s", code, errOut)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n")[1:] {
		f := strings.Fields(l)
		got = append(got, f[5]+" "+f[6]+" "+strings.Join(f[9:], " "))
	}
	want := []string{"complain 2 profile web-v1", "complain 1 recording:web", "errno 1 profile web-v1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows %q, want %q:\n%s", got, want, out)
	}
}

// TestHelpConfig: --config names every part of the policy file the agent
// reads, not only [[notify.rule]].
func TestHelpConfig(t *testing.T) {
	code, out, errOut := runMain("--help")
	if code != 0 {
		t.Fatalf("--help: exit %d: %s", code, errOut)
	}
	_, cfg, _ := strings.Cut(out, "--config value")
	cfg, _, _ = strings.Cut(cfg, "\n")
	for _, want := range []string{"[[notify.rule]]", "[record]", "[[rule]]", "--nri-socket"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("--config's help %q: no %s", cfg, want)
		}
	}
}
