package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/seccomp-shim/seccomp-shim/internal/recording"
	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// netfilesSource is a workload nobody tuned for seccomp: a Go program that
// serves HTTP on loopback, fetches from itself, and writes and reads back
// a file.
const netfilesSource = `package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
)

func main() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "netfiles") }))
	for i := 0; i < 5; i++ {
		resp, err := http.Get("http://" + l.Addr().String() + "/")
		if err != nil {
			panic(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := os.WriteFile("/tmp/netfiles.txt", b, 0o644); err != nil {
			panic(err)
		}
		if d, err := os.ReadFile("/tmp/netfiles.txt"); err != nil || string(d) != "netfiles" {
			panic(fmt.Sprint(string(d), err))
		}
	}
	fmt.Println("netfiles ok")
}
`

// workloadFiles builds the Go workload and a web root for busybox httpd,
// for the test's containers to mount.
func workloadFiles(t testing.TB) (www, bin string) {
	t.Helper()
	dir := t.TempDir()
	www, bin = filepath.Join(dir, "www"), filepath.Join(dir, "netfiles")
	os.Mkdir(www, 0o755)
	os.WriteFile(filepath.Join(www, "index.html"), []byte("hello-record\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte(netfilesSource), 0o644)
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "main.go")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the Go workload: %v\n%s", err, out)
	}
	return www, bin
}

// recordWorkload is a bundle running script under busybox sh, with the Go
// workload at /bin/netfiles, a web root at /www and a writable /tmp.
func recordWorkload(t testing.TB, script string) string {
	t.Helper()
	www, bin := workloadFiles(t)
	bundle := harness.NewBundle(t, harness.Rootfs(t), "/bin/busybox", "sh", "-c", script)
	harness.EditConfig(t, bundle, func(m map[string]any) {
		m["mounts"] = append(m["mounts"].([]any),
			map[string]any{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "nodev"}},
			map[string]any{"destination": "/www", "type": "bind", "source": www, "options": []string{"bind", "ro"}},
			map[string]any{"destination": "/bin/netfiles", "type": "bind", "source": bin, "options": []string{"bind", "ro"}},
		)
	})
	return bundle
}

// The two halves of the workload: busybox httpd serving wget, and the Go
// program. Each replica runs one; the enforced container runs both.
const (
	httpdScript    = "/bin/busybox httpd -p 127.0.0.1:8080 -h /www && for i in 1 2 3; do /bin/busybox wget -q -O - http://127.0.0.1:8080/index.html; done"
	netfilesScript = "/bin/netfiles"
)

// waitRecording waits until the recording name in dir holds n containers:
// the agent writes it when it sees the container's filter released.
func waitRecording(t *testing.T, dir, name string, n int) *recording.Recording {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := recording.Store{Dir: dir}.Load(name)
		if err == nil && r.Containers >= n {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("recording %s: %+v, %v; want %d containers", name, r, err, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// recordAgent runs seccomp-agent record ARGS with the test's config.
func recordAgent(t *testing.T, cfg string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bins.agent, append(append([]string{"record"}, args[:1]...), append([]string{"--config", cfg}, args[1:]...)...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("seccomp-agent record %q: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestRecordLoop is the loop a user runs, through the shim and runc: two
// replicas recorded under one name merge; the recorded profile installed
// under a name runs the whole workload enforced; a syscall the workload
// never made is denied and audited; a record request the policy doesn't
// allow fails the create, naming the rule.
func TestRecordLoop(t *testing.T) {
	recordings := filepath.Join(t.TempDir(), "recordings")
	rt, cfg, auditLog := agentShim(t, fmt.Sprintf(`
[record]
dir = %q
[[rule]]
name = "recorded"
match.ids = ["rec-*"]
record = "web"
[[rule]]
name = "teams"
match.ids = ["team-*"]
allowed_recordings = ["team-*"]
`, recordings))

	// 1. Record: two replicas, each doing half of the work.
	out := run(t, rt, "rec-1", recordWorkload(t, httpdScript))
	want(t, out, "hello-record", "hello-record", "hello-record")
	want(t, run(t, rt, "rec-2", recordWorkload(t, netfilesScript)), "netfiles ok")
	r := waitRecording(t, recordings, "web", 2)
	t.Logf("recorded: %+v", r.Architectures[specs.ArchX86_64])
	x86 := r.Architectures[specs.ArchX86_64]
	if x86 == nil {
		t.Fatalf("nothing recorded for x86_64: %+v", r)
	}
	for _, n := range []string{"bind", "listen", "socket", "sendfile", "connect", "clone"} {
		if !slices.Contains(x86.Syscalls, n) {
			t.Errorf("%s not recorded: %v", n, x86.Syscalls)
		}
	}
	for _, n := range []string{"mkdirat", "mkdir", "keyctl", "write", "read"} {
		if slices.Contains(x86.Syscalls, n) {
			t.Errorf("%s recorded (never made, or in the baseline): %v", n, x86.Syscalls)
		}
	}
	if !slices.Contains(x86.Args["socket"], 2) || !slices.Contains(x86.Args["clone"], 0) {
		t.Errorf("argument values: %v", x86.Args)
	}
	// A request the policy doesn't allow fails with a clear error.
	b := recordWorkload(t, "true")
	harness.EditConfig(t, b, func(m map[string]any) {
		m["annotations"] = map[string]any{"seccomp-shim.io/record": "web"}
	})
	if res, err := rt.Run(t, "team-a", b); err == nil || !strings.Contains(err.Error(), `annotation seccomp-shim.io/record="web": rule "teams" allows recording only as ["team-*"]: not allowed by policy`) {
		t.Errorf("a record request the rule doesn't allow: %v\n%s", err, res.Stderr)
	}
	// One it allows is recorded under its own name.
	harness.EditConfig(t, b, func(m map[string]any) {
		m["annotations"] = map[string]any{"seccomp-shim.io/record": "team-a"}
	})
	run(t, rt, "team-b", b)
	waitRecording(t, recordings, "team-a", 1)

	// 2. Install the recorded profile under a name.
	if out := recordAgent(t, cfg, "install", "web", "web-v1"); !strings.Contains(out, "web-v1.json") {
		t.Errorf("install: %s", out)
	}
	if out := recordAgent(t, cfg, "diff", "web", "default"); !strings.Contains(out, "syscalls treated differently") || !strings.Contains(out, "\nmkdir ") {
		t.Errorf("diff against default:\n%s", out)
	}
	// 3. Complain: web-v1 not enforced yet. The whole workload makes no
	// would-be denial; the mkdir it never made while recorded is one, and
	// runs.
	// 4. Enforce: the same profile denies that mkdir and audits it.
	body, _ := os.ReadFile(cfg)
	body = append(body, "[[rule]]\nname = \"web complain\"\nmatch.ids = [\"cmp-*\"]\nprofile = \"web-v1\"\nexisting = \"replace\"\nenforce = false\n"...)
	body = append(body, "[[rule]]\nname = \"web\"\nmatch.ids = [\"web-*\"]\nprofile = \"web-v1\"\nexisting = \"replace\"\n"...)
	if err := os.WriteFile(cfg, body, 0o644); err != nil {
		t.Fatal(err)
	}
	workload := httpdScript + "; " + netfilesScript + "; /bin/busybox mkdir /tmp/never && echo mkdir ran || echo mkdir denied"
	want(t, run(t, rt, "cmp-1", recordWorkload(t, workload)), "hello-record", "netfiles ok", "mkdir ran")
	if got := waitAudit(t, auditLog, "cmp-1", "mkdir complain 1 profile web-v1"); len(got) != 1 {
		t.Errorf("cmp-1's would-be denials: %q, want only mkdir", got)
	}
	want(t, run(t, rt, "web-1", recordWorkload(t, workload)), "hello-record", "netfiles ok", "mkdir denied")
	if got := waitAudit(t, auditLog, "web-1", "mkdir errno 1 profile web-v1"); len(got) != 1 {
		t.Errorf("web-1's denials: %q, want only mkdir, the syscall it never made", got)
	}

	// The profile recorded under this runc runs under the other one too:
	// the baseline holds what runc 1.1's and 1.3's init make after loading
	// the filter.
	t.Run("other runc", func(t *testing.T) {
		this := harness.RequireBinary(t, "runc")
		other := harness.NewstackBinary(t, "runc", "v1.3.*", "runc")
		if other == this {
			other = "/usr/sbin/runc" // Debian's 1.1
		}
		body, _ := os.ReadFile(cfg)
		if err := os.WriteFile(cfg, []byte(strings.Replace(string(body), fmt.Sprintf("path = [%q]", this), fmt.Sprintf("path = [%q]", other), 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		rt2 := *rt
		rt2.Root = t.TempDir()
		bundle := recordWorkload(t, httpdScript+"; "+netfilesScript)
		res, err := rt2.Run(t, "web-2", bundle)
		if err != nil {
			log, _ := os.ReadFile(filepath.Join(bundle, "log.json"))
			t.Fatalf("web-2: %v\n%s\n%s", err, res.Stderr, log)
		}
		out := res.Stdout
		want(t, out, "hello-record", "netfiles ok")
	})
}

// TestRecordLoopRunc13 is the loop on today's runc: recorded and enforced
// under runc 1.3, and enforced under Debian's 1.1.
func TestRecordLoopRunc13(t *testing.T) {
	runc := harness.NewstackBinary(t, "runc", "v1.3.*", "runc")
	t.Setenv("PATH", filepath.Dir(runc)+string(os.PathListSeparator)+os.Getenv("PATH"))
	TestRecordLoop(t)
}

// engineRun runs script under busybox sh in one of an engine's containers,
// with annotations, the workload's files mounted as recordWorkload does;
// it returns the output.
type engineRun func(t *testing.T, annotations map[string]string, script string) (string, error)

// engineRecordConfig is the policy of the engine tests: a container may ask
// to be recorded under a name starting with prefix. An engine that passes
// no annotations (Debian's Docker 20.10) is matched by its environment
// instead, and the rule records it.
func engineRecordConfig(recordings, prefix string, byEnv bool) string {
	if byEnv {
		return fmt.Sprintf("[record]\ndir = %q\n[[rule]]\nname = \"recording\"\nmatch.env = [\"SECCOMP_SHIM_RECORD=%s-web\"]\nrecord = \"%s-web\"\n", recordings, prefix, prefix)
	}
	return fmt.Sprintf("[record]\ndir = %q\n[[rule]]\nname = \"recording\"\nmatch.annotations = { \"seccomp-shim.io/record\" = \"*\" }\nallowed_recordings = [\"%s-*\"]\n", recordings, prefix)
}

// envOf is how an engine without annotations asks for what annotations
// ask for here.
func envOf(ann map[string]string) []string {
	names := map[string]string{"seccomp-shim.io/record": "SECCOMP_SHIM_RECORD", "app": "APP"}
	var env []string
	for k, v := range ann {
		env = append(env, "-e", names[k]+"="+v)
	}
	return env
}

// recordEngineLoop is TestRecordLoop through an engine: two replicas
// recorded by annotation merge, the recorded profile installed enforces,
// the one syscall the workload never made is denied and audited, and a
// record request the policy doesn't allow fails.
func recordEngineLoop(t *testing.T, cfg, auditLog, recordings, prefix string, byEnv bool, runIn engineRun) {
	name := prefix + "-web"
	rec := map[string]string{"seccomp-shim.io/record": name}
	out, err := runIn(t, rec, httpdScript)
	if err != nil || strings.Count(out, "hello-record") != 3 {
		t.Fatalf("replica 1: %v\n%s", err, out)
	}
	if out, err := runIn(t, rec, netfilesScript); err != nil || !strings.Contains(out, "netfiles ok") {
		t.Fatalf("replica 2: %v\n%s", err, out)
	}
	r := waitRecording(t, recordings, name, 2)
	for _, n := range []string{"bind", "sendfile", "connect"} {
		if !slices.Contains(r.Architectures[specs.ArchX86_64].Syscalls, n) {
			t.Errorf("%s not recorded: %+v", n, r.Architectures[specs.ArchX86_64])
		}
	}
	out, err = runIn(t, map[string]string{"seccomp-shim.io/record": "web"}, "true")
	if !byEnv && (err == nil || !strings.Contains(out, `annotation seccomp-shim.io/record="web": rule "recording" allows recording only as ["`+prefix+`-*"]: not allowed by policy`)) {
		t.Errorf("a record request the rule doesn't allow: %v\n%s", err, out)
	}

	recordAgent(t, cfg, "install", name)
	body, _ := os.ReadFile(cfg)
	match := fmt.Sprintf("match.annotations = { app = %q }", prefix)
	if byEnv {
		match = fmt.Sprintf("match.env = [\"APP=%s\"]", prefix)
	}
	rule := fmt.Sprintf("[[rule]]\nname = \"enforce\"\n%s\nprofile = %q\nexisting = \"replace\"\n", match, name)
	if err := os.WriteFile(cfg, append(body, rule...), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runIn(t, map[string]string{"app": prefix}, httpdScript+"; "+netfilesScript+"; /bin/busybox mkdir /tmp/never || echo mkdir denied")
	if err != nil || strings.Count(out, "hello-record") != 3 || !strings.Contains(out, "netfiles ok") || !strings.Contains(out, "mkdir denied") {
		t.Fatalf("enforced: %v\n%s", err, out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var denied []string
		for _, rec := range readAudit(t, auditLog) {
			if rec["rule"] == "profile "+name {
				denied = append(denied, fmt.Sprint(rec["syscall"], " ", rec["errno"]))
			}
		}
		if slices.Equal(denied, []string{"mkdir 1"}) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("denials by profile %s: %q, want only mkdir's", name, denied)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRecordDocker: the loop through Docker, the shim as a runtime in
// daemon.json. Debian's Docker 20.10 passes no annotations: the rule records
// what docker run -e SECCOMP_SHIM_RECORD=docker-web starts.
func TestRecordDocker(t *testing.T) {
	recordings := filepath.Join(t.TempDir(), "recordings")
	_, cfg, auditLog := agentShim(t, engineRecordConfig(recordings, "docker", true))
	d := harness.NewDocker(t, bins.shim, map[string]string{"seccomp-shim": cfg})
	www, bin := workloadFiles(t)
	recordEngineLoop(t, cfg, auditLog, recordings, "docker", true, func(t *testing.T, ann map[string]string, script string) (string, error) {
		args := []string{"--rm", "--runtime=seccomp-shim", "-v", www + ":/www:ro", "-v", bin + ":/bin/netfiles:ro", "--tmpfs", "/tmp"}
		args = append(args, envOf(ann)...)
		out, stderr, err := d.RunContainer(append(args, harness.DockerImage, "/bin/busybox", "sh", "-c", script)...)
		return out + stderr, err
	})
}

// TestRecordPodman: the loop through podman with the shim as its runtime,
// recording asked for with podman run --annotation.
func TestRecordPodman(t *testing.T) {
	recordings := filepath.Join(t.TempDir(), "recordings")
	_, cfg, auditLog := agentShim(t, engineRecordConfig(recordings, "podman", false))
	pm, image := podman(t)
	wrapper := shimWrapper(t, cfg)
	www, bin := workloadFiles(t)
	recordEngineLoop(t, cfg, auditLog, recordings, "podman", false, func(t *testing.T, ann map[string]string, script string) (string, error) {
		args := []string{"--runtime", wrapper, "-v", www + ":/www:ro", "-v", bin + ":/bin/netfiles:ro", "--tmpfs", "/tmp"}
		for k, v := range ann {
			args = append(args, "--annotation", k+"="+v)
		}
		return pm.Run(append(args, image, "/bin/busybox", "sh", "-c", script)...)
	})
}

// TestRecordContainerdCRI: the loop through containerd's CRI plugin, as the
// kubelet drives it: a RuntimeClass handler whose BinaryName is the shim,
// recording asked for by a pod annotation (pod_annotations), the recorded
// profile enforced by a rule on a container annotation.
func TestRecordContainerdCRI(t *testing.T) {
	recordings := filepath.Join(t.TempDir(), "recordings")
	_, cfg, auditLog := agentShim(t, engineRecordConfig(recordings, "cri", false))
	criConf := fmt.Sprintf(`
[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.seccomp-shim]
  runtime_type = "io.containerd.runc.v2"
  pod_annotations = ["seccomp-shim.io/*"]
  container_annotations = ["app"]
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.seccomp-shim.options]
  BinaryName = %q
  Root = "{{DIR}}/runc"
`, shimWrapper(t, cfg))
	ctd := harness.NewContainerd(t, harness.ContainerdOptions{SandboxImage: ctdImage, CRI: criConf})
	ctd.Import(t, "k8s.io", harness.Rootfs(t), ctdImage, []string{"/bin/sleep", "100000"})
	k := ctd.CRI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := k.WaitImage(ctx, ctdImage); err != nil {
		t.Fatal(err)
	}
	recordEngineLoop(t, cfg, auditLog, recordings, "cri", false, criRecordRun(t, ctx, k, "seccomp-shim", "default", ctdImage, "127.0.0.1:18931"))
}

// criRecordRun runs the loop's containers through CRI as the kubelet
// does: each in a host-network pod of namespace under runtime handler,
// httpd on a port of its own (addr), the seccomp-shim.io annotations the
// pod's (where an operator puts them), the rest the container's.
func criRecordRun(t *testing.T, ctx context.Context, k *harness.CRI, handler, namespace, image, addr string) engineRun {
	www, bin := workloadFiles(t)
	pods := 0
	return func(t *testing.T, ann map[string]string, script string) (string, error) {
		pods++
		podAnn, ctrAnn := map[string]string{}, map[string]string{}
		for k, v := range ann {
			if strings.HasPrefix(k, "seccomp-shim.io/") {
				podAnn[k] = v
			} else {
				ctrAnn[k] = v
			}
		}
		script = strings.ReplaceAll(script, "127.0.0.1:8080", addr)
		p, err := k.RunPod(ctx, harness.PodConfig(fmt.Sprint("rec-", pods), namespace, t.TempDir(), podAnn), handler)
		if err != nil {
			return "", err
		}
		cc := harness.ContainerConfig("work", image, nil, "/bin/busybox", "sh", "-c", script)
		cc.Annotations = ctrAnn
		cc.Mounts = []*cri.Mount{{ContainerPath: "/www", HostPath: www, Readonly: true}, {ContainerPath: "/bin/netfiles", HostPath: bin, Readonly: true}}
		_, out, err := k.Run(ctx, p, cc)
		if err != nil {
			return out + err.Error(), err
		}
		return out, nil
	}
}

// BenchmarkRecordOverhead: what recording costs a workload nobody tuned:
// busybox httpd (a fork per request, about 20 syscalls of each outside the
// baseline) served to a Go client, requests per second with and without
// recording. Both run at once through the same shim and agent, on the
// host's network, and are asked in turn, 50 requests at a time, so that
// drift on the machine hits both alike; the ratio is record/plain.
func BenchmarkRecordOverhead(b *testing.B) {
	harness.RequireRoot(b)
	dir := b.TempDir()
	socket := filepath.Join(dir, "agent.sock")
	cfg, _ := writeConfig(b, fmt.Sprintf("[audit]\nmode = \"always\"\nsocket = %q\nunreachable = \"refuse\"\n[record]\ndir = %q\n[[rule]]\nmatch.ids = [\"bench-record\"]\nrecord = \"bench\"\n", socket, filepath.Join(dir, "recordings")))
	agent := exec.Command(bins.agent, "--socket", socket, "--audit-log", filepath.Join(dir, "audit.log"), "--config", cfg, "--metrics", "")
	if err := agent.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { agent.Process.Signal(os.Interrupt); agent.Wait() }()
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", socket); err == nil {
			c.Close()
			break
		} else if i > 300 {
			b.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	rt := &harness.Runtime{Bin: bins.shim, Root: b.TempDir(), Env: []string{"SECCOMP_SHIM_CONFIG=" + cfg}}
	serve := func(id string, port int) string {
		bundle := recordWorkload(b, fmt.Sprintf("exec /bin/busybox httpd -f -p 127.0.0.1:%d -h /www", port))
		harness.EditConfig(b, bundle, func(m map[string]any) {
			l := m["linux"].(map[string]any)
			var ns []any
			for _, n := range l["namespaces"].([]any) {
				if n.(map[string]any)["type"] != "network" {
					ns = append(ns, n)
				}
			}
			l["namespaces"] = ns
		})
		if err := rt.Create(id, bundle); err != nil {
			b.Fatal(err)
		}
		if err := rt.Start(id, bundle); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { rt.Delete(id, bundle); harness.Wait(bundle) })
		return fmt.Sprintf("http://127.0.0.1:%d/index.html", port)
	}
	urls := map[string]string{"record": serve("bench-record", 18941), "plain": serve("bench-plain", 18942)}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	get := func(url string, n int) time.Duration {
		t0 := time.Now()
		for range n {
			for i := 0; ; i++ {
				resp, err := client.Get(url)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					break
				}
				if i > 100 { // the server may still be starting
					b.Fatalf("%s: %v", url, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		return time.Since(t0)
	}
	get(urls["record"], 20) // warm up, and wait for both to listen
	get(urls["plain"], 20)
	const batch = 50
	var took = map[string]time.Duration{}
	b.ResetTimer()
	for i := range b.N {
		order := []string{"record", "plain"}
		if i%2 == 1 {
			order = []string{"plain", "record"}
		}
		for _, v := range order {
			took[v] += get(urls[v], batch)
		}
	}
	b.StopTimer()
	rps := func(v string) float64 { return float64(b.N*batch) / took[v].Seconds() }
	b.ReportMetric(rps("record"), "record-req/s")
	b.ReportMetric(rps("plain"), "plain-req/s")
	b.ReportMetric(rps("record")/rps("plain"), "record/plain")
}

// waitAudit waits until the audit log has the record want ("SYSCALL ACTION
// ERRNO RULE") of container, and returns all of that container's records.
func waitAudit(t *testing.T, auditLog, container, want string) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got []string
		for _, rec := range readAudit(t, auditLog) {
			if rec["container"] == container {
				got = append(got, fmt.Sprint(rec["syscall"], " ", rec["action"], " ", rec["errno"], " ", rec["rule"]))
			}
		}
		if slices.Contains(got, want) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit record %q of %s in %q", want, container, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestStrictAuditedRunc13: strict, audited by the agent, starts under runc
// 1.3, whose init waits for its parent with recvfrom after handing the
// notify fd over, after the filter is loaded (the fact the recording
// baseline was found to need, shared with strict's list).
func TestStrictAuditedRunc13(t *testing.T) {
	runc := harness.NewstackBinary(t, "runc", "v1.3.*", "runc")
	t.Setenv("PATH", filepath.Dir(runc)+string(os.PathListSeparator)+os.Getenv("PATH"))
	rt, _, _ := agentShim(t, "[[rule]]\nprofile = \"strict\"\nexisting = \"replace\"\n")
	want(t, run(t, rt, "strict-13", harness.NewBundle(t, harness.Rootfs(t), "/bin/echo", "strict", "works")), "strict works")
}
