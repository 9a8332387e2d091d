package install

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
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
// reads either the old file or the new one, never a truncated one: a temp
// file in the same directory, fsync, rename, fsync of the directory. An
// existing file keeps its owner and mode (an admin may have made daemon.json
// 0600); a new one gets mode. Equal content is not rewritten, so a second
// install leaves even the mtime alone. It reports whether it wrote.
func writeAtomic(path string, data []byte, mode fs.FileMode) (bool, error) {
	old, exists, err := readRegular(path)
	if err != nil {
		return false, err
	}
	if exists && bytes.Equal(old, data) {
		return false, nil
	}
	uid, gid := -1, -1
	if exists {
		fi, err := os.Stat(path)
		if err != nil {
			return false, err
		}
		mode = fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	dir := filepath.Dir(path)
	// Hidden, so that a conf.d/*.toml glob can't pick up a leftover from a
	// crash as a config file.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".seccomp-install-*")
	if err != nil {
		return false, err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if uid >= 0 {
		// Only root may give a file away; the tests run as anyone.
		if err := tmp.Chown(uid, gid); err != nil && !(errors.Is(err, syscall.EPERM) && os.Geteuid() != 0) {
			return false, err
		}
	}
	// Chmod after chown, which clears set-id bits; and explicitly, because
	// CreateTemp's 0600 and the umask are not what the file should have.
	if err := tmp.Chmod(mode); err != nil {
		return false, err
	}
	if _, err := tmp.Write(data); err != nil {
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return false, err
	}
	ok = true
	return true, syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
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
	return true, syncDir(filepath.Dir(path))
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
