package install

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/seccomp-shim/seccomp-shim/internal/atomicfile"
)

// readRegular reads path; a missing file is (nil, false, nil). A symlink is
// refused rather than followed: the rename that replaces the file would
// replace the link, not what the engine reads through it, and under --root an
// absolute link target would point outside the tree.
func readRegular(path string) (data []byte, exists bool, err error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, true, fmt.Errorf("%s is a symlink; refusing to edit through it (edit its target, or replace the link with a file)", path)
	}
	if !fi.Mode().IsRegular() {
		return nil, true, fmt.Errorf("%s is not a regular file (mode %s)", path, fi.Mode())
	}
	data, err = os.ReadFile(path)
	return data, true, err
}

// writeAtomic replaces path with data so that an engine starting meanwhile
// reads either the old file or the new one, never a truncated one
// (atomicfile: temp file in the same directory, fsync, rename, fsync of the
// directory). An existing file keeps its owner and mode (an admin may have
// made daemon.json 0600); a new one gets mode. Equal content is not
// rewritten, so a second install leaves even the mtime alone. It reports
// whether it wrote.
func writeAtomic(path string, data []byte, mode fs.FileMode) (bool, error) {
	old, exists, err := readRegular(path)
	if err != nil {
		return false, err
	}
	if exists && bytes.Equal(old, data) {
		return false, nil
	}
	o := atomicfile.Options{Mode: mode, Tag: "seccomp-install"}
	if exists {
		fi, err := os.Stat(path)
		if err != nil {
			return false, err
		}
		o.Mode = fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			o.Chown, o.UID, o.GID = true, int(st.Uid), int(st.Gid)
		}
	}
	fi, err := atomicfile.Write(path, data, o)
	return fi != nil, err
}

// removeFile removes path if it exists, and reports whether it did.
func removeFile(path string) (bool, error) {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, atomicfile.SyncDir(filepath.Dir(path))
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
