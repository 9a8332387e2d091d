package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
	"golang.org/x/sys/unix"
)

// hostileProfile denies keyctl with EPERM and mkdirat with EPROTO, an errno
// mkdirat itself never returns, so an answer the agent replayed from the
// profile can't be mistaken for the kernel's.
const hostileProfile = `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[` +
	`{"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":1},` +
	`{"names":["mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":71}]}`

const (
	hostileEPERM        = int(unix.EPERM)
	hostileEACCES       = int(unix.EACCES)
	hostileEPROTO       = int(unix.EPROTO)
	hostileFloodS       = 6 // long enough to start and finish the calm runs inside it
	hostileFloodThreads = 8
)

// TestHostileContainer: one container floods the agent with denied
// syscalls from many threads while racing a path argument against a path
// rule; a second container started meanwhile still gets every answer right,
// the racing container never gets a call through, the agent survives and
// answers, and its audit log stays small. Latency is logged, not asserted:
// this machine's timing is not the test's to judge.
func TestHostileContainer(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "agent.sock")
	rt, profiles := shim(t, fmt.Sprintf("[audit]\nmode = \"always\"\nsocket = %q\nunreachable = \"refuse\"\n", socket))
	cfg := strings.TrimPrefix(rt.Env[0], "SECCOMP_SHIM_CONFIG=")
	hostileAppend(t, cfg, `
[[rule]]
name = "hostile test"
profile = "hostile"

# What racePath races: the agent reads arg 1 of mkdirat. A path rule may
# only deny, so whatever the container swaps in, the call fails: with 13 if
# the agent read /etc/..., with the profile's 71 otherwise.
[[notify.rule]]
name = "no mkdir in /etc"
syscalls = ["mkdirat"]
path = { arg = 1, glob = "/etc/*" }
action = "errno"
errno = 13
`)
	writeProfile(t, profiles, "hostile", hostileProfile)
	agent := startHostileAgent(t, socket, cfg)

	idle := hostileCalmRun(t, rt, "calm-idle")

	// A tmpfs /tmp, so that a mkdirat the agent wrongly let through would
	// succeed (or fail with EEXIST): either is visible in the counts.
	hostile := harness.NewBundle(t, harness.Rootfs(t), "/bin/sh", "-c",
		fmt.Sprintf("/bin/probe flood keyctl %d %d & /bin/probe race-path %d; wait", hostileFloodS, hostileFloodThreads, hostileFloodS))
	harness.EditConfig(t, hostile, func(m map[string]any) {
		mounts, _ := m["mounts"].([]any)
		m["mounts"] = append(mounts, map[string]any{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": []any{"nosuid", "nodev", "mode=1777"}})
	})
	if err := rt.Create("hostile-1", hostile); err != nil {
		t.Fatal(err)
	}
	reaped := false
	defer func() {
		_ = rt.Delete("hostile-1", hostile)
		if !reaped {
			_, _ = harness.Wait(hostile)
		}
	}()
	if err := rt.Start("hostile-1", hostile); err != nil {
		t.Fatal(err)
	}
	// The agent writes a container's first records at once: once the
	// flood's show up, it is on (the race starts with it).
	hostileWaitAudit(t, agent.auditLog, `"container":"hostile-1"`, `"syscall":"keyctl"`)

	var busy []float64
	for i := range 3 {
		busy = append(busy, hostileCalmRun(t, rt, fmt.Sprintf("calm-busy-%d", i)))
	}
	if !hostileRunning(t, hostile) {
		t.Errorf("the hostile container ended before the calm runs did: they did not overlap (make hostileFloodS longer)")
	}
	t.Logf("calm container, 2000 routed keyctl: %.1f µs/op idle; during the flood %.1f, %.1f, %.1f µs/op",
		idle/1000, busy[0]/1000, busy[1]/1000, busy[2]/1000)

	code, err := harness.Wait(hostile)
	reaped = true
	if err != nil || code != 0 {
		b, _ := os.ReadFile(filepath.Join(hostile, "stderr"))
		t.Fatalf("hostile container: exit %d, %v\nstderr: %s", code, err, b)
	}
	out, _ := os.ReadFile(filepath.Join(hostile, "stdout"))
	res := hostileResults(t, string(out))
	t.Logf("hostile container:\n%s", out)
	floodCalls := hostileOnly(t, "flood keyctl", res["keyctl"], hostileEPERM)
	raceCalls := hostileOnly(t, "race-path mkdirat", res["mkdirat"], hostileEACCES, hostileEPROTO)
	if floodCalls == 0 || raceCalls == 0 {
		t.Errorf("the hostile container made %d keyctl and %d mkdirat calls; want both > 0", floodCalls, raceCalls)
	}
	// Both answers prove the agent really saw both strings: the race was
	// on, and the rule decided by what it read, not by a fixed answer.
	if res["mkdirat"][hostileEACCES] == 0 || res["mkdirat"][hostileEPROTO] == 0 {
		t.Errorf("race-path: want both EACCES (read /etc/...) and EPROTO (read /tmp/ok), got %v", res["mkdirat"])
	}

	// Still there, and still answering.
	if err := unix.Kill(agent.cmd.Process.Pid, 0); err != nil {
		t.Fatalf("agent process: %v", err)
	}
	want(t, run(t, rt, "after-1", probe(t, "call", "keyctl")), "keyctl errno EPERM 1")

	// Stopping it writes the pending aggregate records.
	agent.stop(t)
	fi, err := os.Stat(agent.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	recs := readAudit(t, agent.auditLog)
	audited := map[string]int{} // syscall -> denials the log accounts for
	aggregates := 0
	for _, r := range recs {
		if r["container"] != "hostile-1" {
			continue
		}
		n := 1
		if c, ok := r["count"].(float64); ok {
			n = int(c)
			aggregates++
		}
		audited[fmt.Sprint(r["syscall"])] += n
	}
	t.Logf("audit log: %d bytes, %d records (%d aggregates) for %d keyctl and %d mkdirat calls; accounted for: %v",
		fi.Size(), len(recs), aggregates, floodCalls, raceCalls, audited)
	if fi.Size() > 4<<20 || len(recs) > 1000 {
		t.Errorf("audit log: %d bytes, %d records: not bounded", fi.Size(), len(recs))
	}
	if aggregates == 0 {
		t.Errorf("audit log: no aggregate record (count) for the flood")
	}
	// Every denial the container saw was audited, in full or in a count.
	// A call interrupted by a signal is asked (and audited) again, so the
	// log may count more, never fewer.
	if audited["keyctl"] < floodCalls || audited["mkdirat"] < raceCalls {
		t.Errorf("audit log accounts for %v; the container saw %d keyctl and %d mkdirat denials", audited, floodCalls, raceCalls)
	}
}

type hostileAgent struct {
	cmd      *exec.Cmd
	auditLog string
	out      string
	once     sync.Once
	err      error
}

// startHostileAgent is agentShim's agent with its own socket and config,
// kept so the test can check it is alive and stop it to flush the audit
// log. --metrics "": another agent may hold the
// default port and socket.
func startHostileAgent(t *testing.T, socket, cfg string) *hostileAgent {
	t.Helper()
	dir := t.TempDir()
	a := &hostileAgent{auditLog: filepath.Join(dir, "audit.log"), out: filepath.Join(dir, "agent.out")}
	a.cmd = exec.Command(bins.agent, "--socket", socket, "--audit-log", a.auditLog, "--config", cfg, "--metrics", "")
	out, err := os.Create(a.out)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	a.cmd.Stdout, a.cmd.Stderr = out, out
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.stop(t)
		if t.Failed() {
			b, _ := os.ReadFile(a.out)
			t.Logf("agent output:\n%s", b)
		}
	})
	if !notifyWaitListening(socket) {
		t.Fatal("agent did not start listening")
	}
	return a
}

func (a *hostileAgent) stop(t *testing.T) {
	a.once.Do(func() {
		a.cmd.Process.Signal(os.Interrupt)
		a.err = a.cmd.Wait()
	})
	if a.err != nil {
		t.Errorf("agent: %v", a.err)
	}
}

var hostileTally = regexp.MustCompile(`(?m)^tally keyctl (\d+) calls (\d+) ns/op$`)

// calmRun runs the well-behaved container: 2000 routed keyctl, every one of
// which must come back EPERM, the profile's answer. It returns ns/op.
func hostileCalmRun(t *testing.T, rt *harness.Runtime, id string) float64 {
	t.Helper()
	out := run(t, rt, id, probe(t, "tally", "keyctl", "2000"))
	m := hostileTally.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s: no tally line in %q", id, out)
	}
	if n := hostileOnly(t, id, hostileResults(t, out)["keyctl"], hostileEPERM); n != 2000 {
		t.Errorf("%s: %d keyctl results, want 2000", id, n)
	}
	ns, _ := strconv.ParseFloat(m[2], 64)
	return ns
}

var hostileResult = regexp.MustCompile(`^result (\S+) (?:ok|errno \S+ (\d+)) (\d+)$`)

// parseResults reads the probe's "result" lines: syscall -> errno (0 for
// success) -> count.
func hostileResults(t *testing.T, out string) map[string]map[int]int {
	t.Helper()
	res := map[string]map[int]int{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "result ") {
			continue
		}
		m := hostileResult.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("bad result line %q", sc.Text())
		}
		e, _ := strconv.Atoi(m[2]) // "" for ok: 0
		n, _ := strconv.Atoi(m[3])
		if res[m[1]] == nil {
			res[m[1]] = map[int]int{}
		}
		res[m[1]][e] += n
	}
	return res
}

// checkOnly fails the test if any call ended other than with one of the
// errnos, and returns how many calls there were.
func hostileOnly(t *testing.T, what string, got map[int]int, errnos ...int) int {
	t.Helper()
	total := 0
	for e, n := range got {
		total += n
		ok := false
		for _, w := range errnos {
			ok = ok || e == w
		}
		if !ok {
			name := "success"
			if e != 0 {
				name = unix.ErrnoName(unix.Errno(e))
			}
			t.Errorf("%s: %d calls ended with %s (%d); only errnos %v are right", what, n, name, e, errnos)
		}
	}
	return total
}

// waitAudit waits until one line of the audit log holds all of parts, per
// part: the writer flushes within a second.
func hostileWaitAudit(t *testing.T, path string, container string, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(path)
		seen := 0
		for _, p := range parts {
			for _, line := range bytes.Split(b, []byte("\n")) {
				if bytes.Contains(line, []byte(container)) && bytes.Contains(line, []byte(p)) {
					seen++
					break
				}
			}
		}
		if seen == len(parts) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("audit log never showed %s with each of %v:\n%s", container, parts, b)
}

// running reports whether the init of the container in bundle is alive
// (not exited, not a zombie waiting for us).
func hostileRunning(t *testing.T, bundle string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bundle, "init.pid"))
	if err != nil {
		t.Fatal(err)
	}
	stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the ")" that ends the command name.
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

func hostileAppend(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}
