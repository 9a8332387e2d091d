package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/test/e2e/harness"
	"golang.org/x/sys/unix"
)

// BenchmarkStart times create+start+wait+delete of /bin/true, as containerd
// does it, for runc and for seccomp-shim, interleaved in each iteration (in
// a random order) so that drift on the machine hits all variants alike.
// The baseline for the shim is runc given the very profile the shim would
// inject, so the ratio is the shim's own cost; runc without a profile shows
// what seccomp itself costs. Each variant reports its median time per start. Run it with
// bench/start.sh.
//
// Bundles live on a tmpfs, as containerd's and CRI-O's do under /run; the
// "disk" variant keeps them on the disk under TMPDIR, like podman's. The
// shim's config names an agent socket of its own that nobody serves, so a
// node's agent never takes part: the shim does its whole job in every run.
func BenchmarkStart(b *testing.B) {
	harness.RequireRoot(b)
	for _, where := range []string{"tmpfs", "disk"} {
		b.Run(where, func(b *testing.B) {
			dir := b.TempDir()
			if where == "tmpfs" {
				if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=0700"); err != nil {
					b.Fatal(err)
				}
				defer unix.Unmount(dir, unix.MNT_DETACH)
			}
			benchmarkStart(b, dir)
		})
	}
}

func benchmarkStart(b *testing.B, dir string) {
	runcBin := harness.RequireBinary(b, "runc")
	rootfs := harness.Rootfs(b)
	// One config, as on a node (two would take turns in the pass-through's
	// runtime record): shim-native-* containers get the native
	// architecture only, the others Docker's default as it is.
	// A node's settings, not the tests' (writeConfig logs at debug, which
	// writes several lines per create): one decision line per create in
	// log.file, at the default level.
	// An empty profiles dir of its own: not the node's
	// /etc/seccomp-shim/profiles, whose default.json would replace the
	// built-in default being measured (or, broken, fail every create).
	cfgDir := b.TempDir()
	cfg := filepath.Join(cfgDir, "config.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("[runtime]\npath = [%q]\n[profiles]\ndir = %q\n[log]\nfile = %q\n[audit]\nsocket = %q\n[[rule]]\nmatch.ids = [\"shim-native-*\"]\narchitectures = \"native\"\n",
		runcBin, b.TempDir(), filepath.Join(cfgDir, "shim.log"), filepath.Join(cfgDir, "no-agent.sock"))), 0o644); err != nil {
		b.Fatal(err)
	}

	type variant struct {
		name   string
		rt     *harness.Runtime
		bundle string
		reset  []byte // config.json to restore before each run
		times  []time.Duration
	}
	n := 0
	bare := func() (string, []byte) {
		data, err := os.ReadFile(filepath.Join(harness.NewBundle(b, rootfs, "/bin/true"), "config.json"))
		if err != nil {
			b.Fatal(err)
		}
		n++
		bundle := filepath.Join(dir, strconv.Itoa(n))
		if err := os.Mkdir(bundle, 0o700); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
			b.Fatal(err)
		}
		return bundle, data
	}
	// prepared is a bundle holding what the shim would write for container
	// id.
	prepared := func(id string) string {
		bundle, _ := bare()
		sh := &harness.Runtime{Bin: bins.shim, Root: b.TempDir(), Env: []string{"SECCOMP_SHIM_CONFIG=" + cfg}}
		// The shim writes it on create: create a throwaway container, then
		// keep its config.json.
		if err := sh.Create(id, bundle); err != nil {
			b.Fatal(err)
		}
		_ = sh.Delete(id, bundle)
		reapPidFile(bundle)
		return bundle
	}
	runc := func() *harness.Runtime { return &harness.Runtime{Bin: runcBin, Root: b.TempDir()} }
	shimRT := func() *harness.Runtime {
		return &harness.Runtime{Bin: bins.shim, Root: b.TempDir(), Env: []string{"SECCOMP_SHIM_CONFIG=" + cfg}}
	}
	bundleAll, bundleNative := prepared("shim-default-prep"), prepared("shim-native-prep")
	all, _ := os.ReadFile(filepath.Join(bundleAll, "config.json"))
	native, _ := os.ReadFile(filepath.Join(bundleNative, "config.json"))
	if len(all) == 0 || bytes.Equal(all, native) {
		b.Fatal("the native rule did not apply to shim-native-*")
	}
	bareAll, dataAll := bare()
	bareNative, dataNative := bare()
	bareNone, _ := bare()
	vs := []*variant{
		{name: "runc-unconfined", rt: runc(), bundle: bareNone},
		{name: "runc-default", rt: runc(), bundle: bundleAll},
		{name: "shim-default", rt: shimRT(), bundle: bareAll, reset: dataAll},
		{name: "runc-native", rt: runc(), bundle: bundleNative},
		{name: "shim-native", rt: shimRT(), bundle: bareNative, reset: dataNative},
	}
	// Each iteration runs the variants in a new random order (seeded, so
	// every run sees the same orders). A container's teardown (cgroups, the
	// filter's memory) goes on in the kernel after delete returns and slows
	// whatever runs next, by 2 to 5 ms after Docker's three-architecture
	// default (docs/benchmarks.md). A rotation gave each variant the same
	// predecessor four times in five: runc-default followed the unconfined
	// run and shim-default followed runc-default, which charged the
	// shim with runc's teardown.
	rng := rand.New(rand.NewPCG(1, 2))
	order := slices.Clone(vs)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rng.Shuffle(len(order), func(x, y int) { order[x], order[y] = order[y], order[x] })
		for _, v := range order {
			if v.reset != nil {
				if err := os.WriteFile(filepath.Join(v.bundle, "config.json"), v.reset, 0o644); err != nil {
					b.Fatal(err)
				}
			}
			id := v.name + "-" + strconv.Itoa(i)
			t0 := time.Now()
			if err := v.rt.Create(id, v.bundle); err != nil {
				b.Fatal(err)
			}
			if err := v.rt.Start(id, v.bundle); err != nil {
				b.Fatal(err)
			}
			reapPidFile(v.bundle)
			if err := v.rt.Delete(id, v.bundle); err != nil {
				b.Fatal(err)
			}
			v.times = append(v.times, time.Since(t0))
		}
	}
	b.StopTimer()
	// Medians: a burst of load on the machine moves a mean by more than
	// the shim costs.
	ms := func(v *variant) float64 {
		slices.Sort(v.times)
		return float64(v.times[len(v.times)/2].Microseconds()) / 1000
	}
	for _, v := range vs {
		b.ReportMetric(ms(v), v.name+"-ms")
	}
	b.ReportMetric(ms(vs[2])/ms(vs[1]), "shim/runc-default")
	b.ReportMetric(ms(vs[4])/ms(vs[3]), "shim/runc-native")
	b.ReportMetric(ms(vs[1])/ms(vs[0]), "default/unconfined")
	b.ReportMetric(ms(vs[3])/ms(vs[0]), "native/unconfined")
}

// reapPidFile waits, blocking, for the init whose pid the bundle recorded:
// the harness made us its subreaper.
func reapPidFile(bundle string) {
	data, err := os.ReadFile(filepath.Join(bundle, "init.pid"))
	if err != nil {
		return
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
			return
		}
	}
}
