package specfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/seccomp-shim/seccomp-shim/internal/atomicfile"
)

// ErrChanged reports that the file was modified or replaced between Read and
// WriteAtomic; writing anyway would silently discard that change.
var ErrChanged = errors.New("file changed since it was read")

// MaxSize is the largest config.json Read accepts. runc has no limit, but
// a spec is a few kilobytes, and a hostile one of gigabytes would cost the
// shim as many in memory; 64 MiB is far beyond any real spec.
const MaxSize = 64 << 20

// File is a config.json read from disk.
type File struct {
	Path     string
	Data     []byte
	Mode     os.FileMode // permission and set-id/sticky bits
	UID, GID int

	fi os.FileInfo // identity of what Data came from, for ErrChanged
}

// Read reads path, which must be a regular file holding one JSON object, so
// that a malformed config is reported with the file's name before anything
// is patched.
//
// A symlink is refused rather than followed: the rename in WriteAtomic would
// replace the link, not its target, and following it would let a bundle
// point the rewrite at any file we can write.
func Read(path string) (*File, error) {
	// O_NONBLOCK so that a FIFO fails the regular-file check below instead of
	// blocking the open until a writer appears.
	fd, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("specfile: %s is a symlink, refusing to rewrite it: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("specfile: %w", err)
	}
	defer fd.Close()
	fi, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("specfile: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("specfile: %s is not a regular file (mode %s)", path, fi.Mode())
	}
	// Sized from the stat, as os.ReadFile does: two reads, not a dozen of
	// io.ReadAll's growing chunks.
	buf := bytes.NewBuffer(make([]byte, 0, min(fi.Size(), MaxSize)+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(fd, MaxSize+1)); err != nil {
		return nil, fmt.Errorf("specfile: %w", err)
	}
	data := buf.Bytes()
	if len(data) > MaxSize {
		return nil, fmt.Errorf("specfile: %s: larger than %d bytes (64 MiB), refusing to read it", path, MaxSize)
	}
	if _, _, _, err := Scan(data); err != nil {
		return nil, fmt.Errorf("specfile: %s: %w", path, err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return &File{
		Path: path,
		Data: data,
		Mode: fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky),
		UID:  int(st.Uid),
		GID:  int(st.Gid),
		fi:   fi,
	}, nil
}

// WriteAtomic replaces f.Path with data, keeping f's owner and mode, unless
// data equals f.Data: then nothing is touched, so a second run is a no-op
// that leaves the mtime alone. On error before the rename the original file
// is untouched and no temporary file is left behind. If the file on disk is
// no longer the one Read saw, it fails with ErrChanged.
//
// It does not fsync. The rename alone is what makes the replacement atomic
// for every reader, runc included: no process ever sees a half-written
// file. An fsync would only make it survive a crash of the machine, and a
// bundle's config.json is never used across one: containerd's and CRI-O's
// bundles are on a tmpfs, and podman writes config.json anew each time it
// starts a container. The two fsyncs cost a container start 0.5 to 7 ms on
// a disk (docs/benchmarks.md).
//
// On success f describes the new file, so it can be patched again.
func (f *File) WriteAtomic(data []byte) (changed bool, err error) {
	if bytes.Equal(data, f.Data) {
		return false, nil
	}
	fi, err := atomicfile.Write(f.Path, data, atomicfile.Options{
		Mode: f.Mode, Chown: true, UID: f.UID, GID: f.GID, Tag: "seccomp-shim",
		Check: f.unchanged, NoSync: true,
	})
	if fi != nil {
		f.Data, f.fi = data, fi
	}
	if errors.Is(err, atomicfile.ErrNotDurable) {
		return true, fmt.Errorf("specfile: replaced %s but could not sync its directory: %w", f.Path, err)
	}
	if err != nil {
		return false, fmt.Errorf("specfile: replacing %s: %w", f.Path, err)
	}
	return true, nil
}

// unchanged fails with ErrChanged if the file on disk is no longer the one
// Read saw. Linux has no compare-and-rename, so a writer racing this check
// can still lose; the check catches everything not racing it, which covers
// another tool having rewritten the bundle since Read.
func (f *File) unchanged() error {
	cur, err := os.Lstat(f.Path)
	if err != nil {
		return err
	}
	if !os.SameFile(cur, f.fi) || cur.Size() != f.fi.Size() || !cur.ModTime().Equal(f.fi.ModTime()) {
		return ErrChanged
	}
	return nil
}
