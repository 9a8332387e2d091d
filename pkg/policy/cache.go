package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The compiled-profile cache (profiles.cache_dir) keeps what Resolve made of
// a profile file: parsing it twice (strictly, then moby's resolver) and
// checking every name cost a container start about 1 ms
// of CPU on a small VM, the same work for every container. Built-in profiles are
// not cached: resolving them is cheaper than decoding the cached result.
//
// An entry is found by a hash of everything its content depends on, and it
// holds that text too, compared in full: the identity (device, inode, size,
// mtime in ns) of the profile file and of this executable (so a new build,
// with its own syscall tables, starts afresh), the kernel release
// (minKernel rules), the container's capabilities and the architecture
// choice. So an entry is never trusted over its inputs: change any of them
// and it no longer matches. Only root's entries, in a directory only root
// can write (made 0700, entries 0600), are read, and entries are written to a temporary file then renamed, so
// concurrent creates each see a whole entry or none.

const cacheMagic = "seccomp-shim compiled profile v1"

type cacheEntry struct {
	Seccomp  *specs.LinuxSeccomp `json:"seccomp"`
	Warnings []string            `json:"warnings,omitempty"`
}

// profileFile is a profile file opened for reading, with the identity that
// the cache key uses.
type profileFile struct {
	path string
	f    *os.File
	id   string
}

// openProfile opens the named profile's file; nil, nil if there is none.
func openProfile(dir, name string) (*profileFile, error) {
	if dir == "" {
		return nil, nil
	}
	path := filepath.Join(dir, name+".json")
	f, err := openRegular(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("profile %q (%s): %w", name, path, err)
	}
	id, err := fileID(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("profile %q (%s): %w", name, path, err)
	}
	return &profileFile{path: path, f: f, id: id}, nil
}

func fileID(f *os.File) (string, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %d %d %d.%09d", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec), nil
}

// read reads the whole file, and fails if it changed meanwhile, so that an
// entry is never stored under an identity its content did not have.
func (pf *profileFile) read() ([]byte, bool, error) {
	data, err := readAtMost(pf.f, MaxProfileSize)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", pf.path, err)
	}
	id, err := fileID(pf.f)
	return data, err == nil && id == pf.id, nil
}

// cacheKey is the text an entry must hold to be used.
func cacheKey(pf *profileFile, d Choice, spec *specs.Spec) (string, error) {
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return "", err
	}
	exeID, err := fileID(exe)
	exe.Close()
	if err != nil {
		return "", err
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nexe %s\nkernel %s\nprofile %s %s\narchitectures %q\n", cacheMagic, exeID,
		unix.ByteSliceToString(uts.Release[:]), pf.path, pf.id, d.Architectures)
	if spec != nil && spec.Process != nil && spec.Process.Capabilities != nil {
		c := spec.Process.Capabilities
		fmt.Fprintf(&b, "capabilities %q %q %q %q %q\n", c.Bounding, c.Effective, c.Inheritable, c.Permitted, c.Ambient)
	}
	return b.String(), nil
}

func cacheFile(dir, key string) string {
	h := fnv.New64a()
	h.Write([]byte(key))
	return filepath.Join(dir, fmt.Sprintf("%016x.json", h.Sum64()))
}

// trustedDir makes dir if needed and says why it can't be used, if so.
func trustedDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != 0 || st.Mode&0o022 != 0 {
		return fmt.Errorf("not a directory only root can write (mode %o, owner %d)", st.Mode, st.Uid)
	}
	return nil
}

// cacheGet returns the entry for key, if there is a trusted one.
func cacheGet(dir, key string) (*cacheEntry, bool) {
	fd, err := unix.Open(cacheFile(dir, key), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != 0 || st.Mode&0o022 != 0 {
		return nil, false
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, false
	}
	body, ok := bytes.CutPrefix(data, []byte(key+"\n"))
	var e cacheEntry
	if !ok || json.Unmarshal(body, &e) != nil || e.Seccomp == nil {
		return nil, false
	}
	return &e, true
}

// cachePut stores the entry for key; a failure only costs the next create
// the same work again.
func cachePut(dir, key string, e *cacheEntry) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append([]byte(key+"\n"), body...))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), cacheFile(dir, key))
}
