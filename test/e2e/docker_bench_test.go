package e2e

import (
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
)

// BenchmarkDockerRun times `docker run --rm /bin/true` end to end through a
// private dockerd, with seccomp-shim (no rules: the default policy) and with
// runc, interleaved in each iteration and in alternating order, so that
// drift on the machine hits both alike. Docker passes its default profile in
// both cases and the default policy keeps it, so runc loads the same filter
// either way and the ratio is the shim's cost as a user of Docker sees it.
func BenchmarkDockerRun(b *testing.B) {
	harness.RequireRoot(b)
	plain, _ := writeConfig(b, "")
	d := harness.NewDocker(b, bins.shim, map[string]string{"seccomp-shim": plain})
	b.Run("no-agent", func(b *testing.B) { benchmarkDockerRun(b, d) })
}

func benchmarkDockerRun(b *testing.B, d *harness.Docker) {
	run := func(runtime string) time.Duration {
		t0 := time.Now()
		_, stderr, err := d.RunContainer("--rm", "--runtime="+runtime, harness.DockerImage, "/bin/true")
		el := time.Since(t0)
		if err != nil {
			b.Fatalf("docker run --runtime=%s: %v\nstderr: %s", runtime, err, stderr)
		}
		return el
	}
	// Warm up both paths (page cache, dockerd's and containerd's caches).
	run("seccomp-shim")
	run("runc")
	var shim, runc time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			shim += run("seccomp-shim")
			runc += run("runc")
		} else {
			runc += run("runc")
			shim += run("seccomp-shim")
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(shim), "shim-ms")
	b.ReportMetric(ms(runc), "runc-ms")
	b.ReportMetric(ms(shim)/ms(runc), "shim/runc")
}
