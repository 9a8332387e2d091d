package harness

import (
	"archive/tar"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Podman runs Debian's podman with a private root, runroot and tmpdir, so
// tests touch nothing of the host's containers.
type Podman struct {
	Bin, Dir string
}

// NewPodman returns a podman with its state under a fresh temp dir.
func NewPodman(t testing.TB) *Podman {
	t.Helper()
	RequireRoot(t)
	RequireBinary(t, "conmon")
	// Not t.TempDir(): podman refuses a runroot longer than 50 characters,
	// and test names make long paths.
	dir, err := os.MkdirTemp("", "pm")
	if err != nil {
		t.Fatal(err)
	}
	p := &Podman{Bin: RequireBinary(t, "podman"), Dir: dir}
	// conmon starts `podman container cleanup` after a container exits,
	// which can still be writing under Dir, and podman leaves shm mounts
	// there: stop all that before removing it.
	t.Cleanup(func() {
		_ = p.Command("rm", "--all", "--force", "--time", "0").Run()
		unmountUnder(p.Dir)
		os.RemoveAll(p.Dir)
	})
	return p
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = unix.Unmount(points[i], unix.MNT_DETACH)
	}
}

// Command returns podman with the private-state global flags prepended.
func (p *Podman) Command(args ...string) *exec.Cmd {
	global := []string{
		"--root", filepath.Join(p.Dir, "root"), "--runroot", filepath.Join(p.Dir, "runroot"),
		"--tmpdir", filepath.Join(p.Dir, "tmp"), "--storage-driver", "vfs",
		"--cgroup-manager", "cgroupfs", "--events-backend", "file",
	}
	return exec.Command(p.Bin, append(global, args...)...)
}

// Import makes image name from the rootfs directory.
func (p *Podman) Import(t testing.TB, rootfs, name string) {
	t.Helper()
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := tarDir(rootfs, tarball); err != nil {
		t.Fatal(err)
	}
	if out, err := p.Command("import", tarball, name).CombinedOutput(); err != nil {
		t.Fatalf("podman import: %v\n%s", err, out)
	}
}

// RunArgs are the `podman run` flags every test needs here: no network
// (no CNI on the test machine) and rlimits under this machine's hard limit.
var RunArgs = []string{"run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}

// Run runs `podman run` with RunArgs, then args; it returns combined output.
func (p *Podman) Run(args ...string) (string, error) {
	out, err := p.Command(append(append([]string{}, RunArgs...), args...)...).CombinedOutput()
	return string(out), err
}

func tarDir(dir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = strings.TrimPrefix(rel, "/")
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			src, err := os.Open(path)
			if err != nil {
				return err
			}
			defer src.Close()
			_, err = io.Copy(tw, src)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
