package recording

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/seccomp-shim/seccomp-shim/internal/atomicfile"
	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"golang.org/x/sys/unix"
)

// DefaultDir is where recordings are kept, as <name>.json, unless the
// config's [record] dir says otherwise.
const DefaultDir = policy.DefaultRecordDir

// Store is a directory of recordings. Its directory is root's alone (0700):
// what is recorded there becomes an enforced profile, so whoever could
// write it could widen a profile.
type Store struct{ Dir string }

// Path is where the recording name is kept.
func (s Store) Path(name string) string { return filepath.Join(s.Dir, name+".json") }

// Load reads the recording name; an error wrapping fs.ErrNotExist if there
// is none. A directory others could write is refused as Add refuses it:
// what is read here becomes a profile.
func (s Store) Load(name string) (*Recording, error) {
	if !policy.ValidName(name) {
		return nil, fmt.Errorf("recording name %q: not a valid profile name (1-128 of [A-Za-z0-9._-], not starting with . _ or -)", name)
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	r, err := ReadFile(s.Path(name))
	if err == nil && r.Name != name {
		return nil, fmt.Errorf("recording %s: %w: name %q: the file is named for %q", s.Path(name), ErrInvalid, r.Name, name)
	}
	return r, err
}

// ReadFile reads a recording file: a regular file of at most MaxFileSize.
func ReadFile(path string) (*Recording, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("recording %s: not a regular file (mode %s)", path, fi.Mode())
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("recording %s: %w", path, err)
	}
	return Parse(path, data)
}

// List reads every recording in the directory, sorted by name. A file that
// doesn't parse is returned in errs, and the rest still listed. An absent
// directory holds no recordings.
func (s Store) List() (recs []*Recording, errs []error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err == nil {
		err = s.check()
	}
	if err != nil {
		return nil, []error{err}
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !policy.ValidName(name) {
			continue // atomicfile's hidden temporaries, other files
		}
		r, err := s.Load(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(a, b *Recording) int { return strings.Compare(a.Name, b.Name) })
	return recs, errs
}

// Add merges r into the recording of its name (creating it), and returns
// the result. Writers, in this process or another (the agent and the
// merge command), take turns on a lock of the directory, so none loses
// another's merge. The file is replaced atomically, root-only (0600).
func (s Store) Add(r *Recording) (*Recording, error) {
	if !policy.ValidName(r.Name) {
		return nil, fmt.Errorf("recording name %q: not a valid profile name", r.Name)
	}
	dir, err := s.open()
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	if err := unix.Flock(int(dir.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock %s: %w", s.Dir, err)
	}
	merged := New(r.Name)
	old, err := s.Load(r.Name)
	switch {
	case err == nil:
		merged = old
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w (move it away to start the recording afresh)", err)
	}
	merged.Merge(r)
	data, err := merged.Marshal()
	if err != nil {
		return nil, err
	}
	if _, err := atomicfile.Write(s.Path(r.Name), data, atomicfile.Options{Mode: 0o600, Tag: "recording"}); err != nil {
		return nil, fmt.Errorf("recording %s: %w", s.Path(r.Name), err)
	}
	return merged, nil
}

// open makes the directory root-only if it doesn't exist, and otherwise
// refuses one that others could write.
func (s Store) open() (*os.File, error) {
	if !filepath.IsAbs(s.Dir) {
		return nil, fmt.Errorf("recordings directory %q: must be an absolute path", s.Dir)
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("recordings directory: %w", err)
	}
	d, err := os.Open(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("recordings directory: %w", err)
	}
	fi, err := d.Stat()
	if err == nil {
		err = privateDir(fi)
	}
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("recordings directory %s: %w", s.Dir, err)
	}
	return d, nil
}

// check refuses an existing directory others could write.
func (s Store) check() error {
	fi, err := os.Stat(s.Dir)
	if err == nil {
		err = privateDir(fi)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("recordings directory %s: %w", s.Dir, err)
	}
	return nil
}

func privateDir(fi fs.FileInfo) error {
	if !fi.IsDir() {
		return errors.New("not a directory")
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("belongs to uid %d, not to us: whoever owns it could widen the profiles recorded there", st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("writable by others (%v): whoever can write it could widen the profiles recorded there; chmod 0700 it", fi.Mode().Perm())
	}
	return nil
}

// Now is the time a recording is stamped with, as First and Last.
func Now() string { return time.Now().UTC().Format(time.RFC3339) }
