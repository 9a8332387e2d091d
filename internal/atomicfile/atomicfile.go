// Package atomicfile replaces a file's contents so that a reader sees
// either the old file or the new one, never a truncated one: it writes a
// temporary file in the same directory and renames it over the target, as
// containerd's pkg/atomicfile does. It is the one writer of the shim's bundle
// file (internal/specfile), seccomp-install's edits and the pass-through
// cache.
//
// Unlike containerd's, it works through a descriptor of the directory, so a
// directory renamed while a write is under way (a bundle moved by its
// engine) still gets its temporary file removed on failure; it gives the
// file an owner; and it lets the caller check, just before the rename, that
// the target is still what it read.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Options says how to write.
type Options struct {
	// Mode is the new file's permission and set-id/sticky bits, set
	// explicitly: neither CreateTemp's 0600 nor the umask applies.
	Mode fs.FileMode
	// Chown gives the file UID and GID (-1 keeps one). Only root can give
	// a file away: without it an EPERM is ignored and the caller owns the
	// result, as with any editor.
	Chown    bool
	UID, GID int
	// NoSync skips the fsyncs of the file and of its directory: the rename
	// is then atomic but may not survive a crash. Default: durable.
	NoSync bool
	// Tag names the writer in the temporary file's name,
	// ".<base>.<tag>-<random>": hidden, so nothing globbing the directory
	// (a conf.d/*.toml, a bundle) picks up a leftover of a crash.
	Tag string
	// Check, if set, runs when the temporary file is complete, just before
	// the rename; an error abandons the write and is returned.
	Check func() error
}

// ErrNotDurable wraps the error of the directory's fsync after the rename
// succeeded: the new file is in place, but a crash may still lose it.
var ErrNotDurable = errors.New("replaced, but the directory could not be synced")

// Write replaces path with data as o says, and returns the new file's
// FileInfo. On any error but ErrNotDurable, path is as it was and no
// temporary file is left behind.
func Write(path string, data []byte, o Options) (fs.FileInfo, error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	tmp, name, err := createTemp(dfd, dir, "."+base+"."+o.Tag+"-")
	if err != nil {
		return nil, err
	}
	fi, err := fill(tmp, data, o)
	if err == nil && o.Check != nil {
		err = o.Check()
	}
	if err == nil {
		err = unix.Renameat(dfd, name, dfd, base)
		if err != nil {
			err = &os.LinkError{Op: "rename", Old: filepath.Join(dir, name), New: path, Err: err}
		}
	}
	if err != nil {
		unix.Unlinkat(dfd, name, 0) // by the directory's fd: wherever it has moved
		return nil, err
	}
	if !o.NoSync {
		if err := unix.Fsync(dfd); err != nil {
			return fi, fmt.Errorf("%s: %w: %w", path, ErrNotDurable, err)
		}
	}
	return fi, nil
}

// createTemp creates a new file named prefix plus a random number in the
// directory dfd, as os.CreateTemp does by path.
func createTemp(dfd int, dir, prefix string) (*os.File, string, error) {
	for range 10000 {
		name := prefix + strconv.FormatUint(uint64(rand.Uint32()), 10)
		fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if err == unix.EEXIST {
			continue
		}
		if err != nil {
			return nil, "", &fs.PathError{Op: "createtemp", Path: filepath.Join(dir, prefix+"*"), Err: err}
		}
		return os.NewFile(uintptr(fd), filepath.Join(dir, name)), name, nil
	}
	return nil, "", &fs.PathError{Op: "createtemp", Path: filepath.Join(dir, prefix+"*"), Err: fs.ErrExist}
}

// fill writes the temporary file and closes it.
func fill(f *os.File, data []byte, o Options) (fi fs.FileInfo, err error) {
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			fi, err = nil, cerr
		}
	}()
	if o.Chown {
		// Before the chmod, since chown clears set-id bits.
		if err := f.Chown(o.UID, o.GID); err != nil && !(errors.Is(err, unix.EPERM) && os.Geteuid() != 0) {
			return nil, err
		}
	}
	if err := f.Chmod(o.Mode); err != nil {
		return nil, err
	}
	if _, err := f.Write(data); err != nil {
		return nil, err
	}
	if !o.NoSync {
		if err := f.Sync(); err != nil {
			return nil, err
		}
	}
	return f.Stat()
}

// SyncDir makes the entries of dir durable, after a rename or a removal.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
