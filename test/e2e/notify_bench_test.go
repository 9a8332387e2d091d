package e2e

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

var (
	notifyCalls   = flag.Int("notify.calls", 30000, "BenchmarkNotifyRoundTrip: routed getppid calls per container run")
	notifyExplain = flag.Bool("notify.explain", false, "BenchmarkNotifyRoundTrip: also time the Go listeners of bench/notify/golisten, each adding one thing the agent does")
)

// notifyBenchProfile denies getppid, so with [audit] the shim routes it to
// the listener: getppid does nothing else in the kernel, so what is timed is
// the notify round trip itself.
const notifyBenchProfile = `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}`

// notifyListener is one process answering the routed getppid: the agent,
// the C floor or a golisten mode, with one answer, on one placement.
type notifyListener struct {
	kind, answer, placement string
	rt                      *harness.Runtime
	bundle                  string
	ns                      []float64 // ns/op of each timed run
}

func (l *notifyListener) name() string { return l.kind + "-" + l.answer + "-" + l.placement }

// BenchmarkNotifyRoundTrip times a routed syscall made in a container, as
// the container sees it, answered by seccomp-agent and by bench/notify/floor.c
// (raw ioctls, one thread: the floor any listener can reach), for both
// answers (continue, errno) and two placements: "cpu0", where the listener
// and the container are pinned to CPU 0, and "free", where the scheduler
// places them. One iteration runs every variant once; the runs of one
// (answer, placement) are adjacent and rotate their order every iteration,
// so drift on the machine hits them alike. Metrics: the median µs per call
// of each variant, and the median over iterations of the paired ratio to
// the floor.
//
// Run it as docs/notify-benchmark.md says: -benchtime=Nx sets the
// iterations (the testing package runs one more first); the benchmark's own
// ns/op is an iteration's wall time and means nothing.
func BenchmarkNotifyRoundTrip(b *testing.B) {
	harness.RequireRoot(b)
	tools := map[string]string{"floor": buildFloor(b)}
	kinds := []string{"agent", "floor"}
	if *notifyExplain {
		tools["golisten"] = buildGolisten(b)
		kinds = append(kinds, "go-block", "go-cthread", "go-block-decide", "go-poll-locked", "go-poll", "go-server", "go-full")
	}
	var groups [][]*notifyListener
	for _, answer := range []string{"continue", "errno"} {
		for _, placement := range []string{"cpu0", "free"} {
			var g []*notifyListener
			for _, kind := range kinds {
				l := &notifyListener{kind: kind, answer: answer, placement: placement}
				startNotifyListener(b, l, tools)
				g = append(g, l)
			}
			groups = append(groups, g)
		}
	}
	// The first run pays for what happens once per listener (the agent's
	// name cache, page faults): not part of a round trip.
	for _, g := range groups {
		for _, l := range g {
			runNotifyBench(b, l, "warm", 2000)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, g := range groups {
			for k := range g {
				l := g[(i+k)%len(g)]
				l.ns = append(l.ns, runNotifyBench(b, l, strconv.Itoa(i), *notifyCalls))
			}
		}
	}
	b.StopTimer()

	var table strings.Builder
	fmt.Fprintf(&table, "%-32s %s\n", "variant", "µs/op, then ratio to the floor, per iteration")
	for _, g := range groups {
		floor := g[1] // kinds puts it second
		for _, l := range g {
			fmt.Fprintf(&table, "%-32s", l.name())
			for _, ns := range l.ns {
				fmt.Fprintf(&table, " %6.2f", ns/1000)
			}
			b.ReportMetric(notifyMedian(l.ns)/1000, l.name()+"-us/op")
			if l != floor {
				ratios := make([]float64, len(l.ns))
				for i := range ratios {
					ratios[i] = l.ns[i] / floor.ns[i]
				}
				fmt.Fprintf(&table, "   x")
				for _, r := range ratios {
					fmt.Fprintf(&table, " %5.3f", r)
				}
				b.ReportMetric(notifyMedian(ratios), l.answer+"-"+l.placement+"-"+l.kind+"/floor")
			}
			fmt.Fprintln(&table)
		}
	}
	b.Logf("%d calls per run\n%s", *notifyCalls, table.String())
}

// buildFloor compiles bench/notify/floor.c, as the docs tell a reader to.
func buildFloor(b *testing.B) string {
	cc, err := exec.LookPath("cc")
	if err != nil {
		b.Fatal("cc not found: apt-get install gcc")
	}
	out := filepath.Join(b.TempDir(), "floor")
	if o, err := exec.Command(cc, "-O2", "-Wall", "-o", out, "../../bench/notify/floor.c").CombinedOutput(); err != nil {
		b.Fatalf("building floor.c: %v\n%s", err, o)
	}
	return out
}

// buildGolisten builds bench/notify/golisten, for -notify.explain.
func buildGolisten(b *testing.B) string {
	out := filepath.Join(b.TempDir(), "golisten")
	cmd := exec.Command("go", "build", "-o", out, "./bench/notify/golisten")
	cmd.Dir = "../.."
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building golisten: %v\n%s", err, o)
	}
	return out
}

// startNotifyListener starts l's listener and a shim pointed at it. Every
// listener gets its own socket and shim config, so each variant reaches
// exactly its own process; idle ones sleep in accept.
func startNotifyListener(b *testing.B, l *notifyListener, tools map[string]string) {
	socket := filepath.Join(b.TempDir(), "listener.sock")
	body := fmt.Sprintf("[audit]\nmode = \"always\"\nsocket = %q\nunreachable = \"refuse\"\n[[rule]]\nname = \"notify bench\"\nprofile = \"notifybench\"\n", socket)
	// The agent (and golisten's server modes) decide by the notify rules
	// in the file the shim reads too, as agentShim does.
	if l.answer == "continue" {
		body += "[[notify.rule]]\nname = \"bench continue\"\nsyscalls = [\"getppid\"]\naction = \"continue\"\n"
	} else {
		body += "[[notify.rule]]\nname = \"bench errno\"\nsyscalls = [\"getppid\"]\naction = \"errno\"\nerrno = 1\n"
	}
	cfg, profiles := writeConfig(b, body)
	writeProfile(b, profiles, "notifybench", notifyBenchProfile)
	dir := b.TempDir()
	answer := l.answer
	if answer == "errno" {
		answer = "1"
	}
	var args []string
	switch l.kind {
	case "agent":
		// --metrics "": the other agents here, and
		// those of other tests, would fight over the default port and
		// socket.
		args = []string{bins.agent, "--socket", socket, "--audit-log", filepath.Join(dir, "audit.log"), "--config", cfg, "--metrics", ""}
	case "floor":
		args = []string{tools["floor"], socket, answer}
	case "go-block", "go-cthread", "go-poll", "go-poll-locked":
		args = []string{tools["golisten"], strings.TrimPrefix(l.kind, "go-"), socket, answer}
	case "go-server", "go-full", "go-block-decide":
		args = []string{tools["golisten"], strings.TrimPrefix(l.kind, "go-"), socket, cfg}
	}
	if l.placement == "cpu0" {
		// taskset execs the listener, so the mask covers every thread it
		// will ever start (the agent's Go runtime then also sizes
		// GOMAXPROCS to the one CPU).
		args = append([]string{"taskset", "-c", "0"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	out, err := os.Create(filepath.Join(dir, "listener.out"))
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		out.Close()
		if b.Failed() {
			o, _ := os.ReadFile(out.Name())
			b.Logf("%s output:\n%s", l.name(), o)
		}
	})
	if !notifyWaitListening(socket) {
		o, _ := os.ReadFile(out.Name())
		b.Fatalf("%s did not start listening:\n%s", l.name(), o)
	}
	l.rt = &harness.Runtime{Bin: bins.shim, Root: b.TempDir(), Env: []string{"SECCOMP_SHIM_CONFIG=" + cfg}}
	// One bundle per listener: the shim keeps a profile already in
	// config.json, so a bundle shared between listeners would keep calling
	// the first one.
	l.bundle = harness.NewBundle(b, harness.Rootfs(b), "/bin/probe")
	harness.EditConfig(b, l.bundle, func(m map[string]any) {
		p := m["process"].(map[string]any)
		// The probe's loop never yields, so Go's sysmon would send it a
		// SIGURG every 10 ms, each withdrawing a pending notification
		// (one wasted round trip). Off, the run times only round trips.
		env, _ := p["env"].([]any)
		p["env"] = append(env, "GODEBUG=asyncpreemptoff=1")
	})
}

func notifyWaitListening(socket string) bool {
	for range 300 {
		if c, err := net.Dial("unix", socket); err == nil {
			c.Close()
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

var notifyBenchLine = regexp.MustCompile(`(?m)^getppid (\d+) calls (\d+) ns/op (\d+) failed$`)

// runNotifyBench runs one container making n routed getppid calls and
// returns the mean ns per call, after checking every call got l's answer.
func runNotifyBench(b *testing.B, l *notifyListener, tag string, n int) float64 {
	args := []string{"/bin/probe", "bench", "getppid", strconv.Itoa(n)}
	if l.placement == "cpu0" {
		args = []string{"/bin/probe", "pin", "0", "bench", "getppid", strconv.Itoa(n)}
	}
	harness.EditConfig(b, l.bundle, func(m map[string]any) {
		m["process"].(map[string]any)["args"] = args
	})
	id := "nb-" + l.name() + "-" + tag
	res, err := l.rt.Run(b, id, l.bundle)
	if err != nil {
		b.Fatalf("%s: %v\nstdout: %s\nstderr: %s", id, err, res.Stdout, res.Stderr)
	}
	m := notifyBenchLine.FindStringSubmatch(res.Stdout)
	if m == nil {
		b.Fatalf("%s: no bench line in %q (stderr %q)", id, res.Stdout, res.Stderr)
	}
	calls, _ := strconv.Atoi(m[1])
	ns, _ := strconv.ParseFloat(m[2], 64)
	failed, _ := strconv.Atoi(m[3])
	// continue lets getppid run, which can't fail; errno fails every call.
	if want := map[string]int{"continue": 0, "errno": calls}[l.answer]; calls != n || failed != want {
		b.Fatalf("%s: %d calls, %d failed; want %d calls, %d failed", id, calls, failed, n, want)
	}
	return ns
}

func notifyMedian(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
