// Package kernelfeat asks the running kernel what it can do, the way
// cilium/ebpf's feature probes do: each probe tries the feature itself, and
// answers nil (present), an error wrapping ErrNotSupported (absent), or
// another error (it could not tell). `seccomp-shim check`, the policy's
// architectures = "auto" and the tests' skips all use these probes, so they
// can't disagree.
package kernelfeat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNotSupported marks a feature the kernel lacks.
var ErrNotSupported = errors.New("not supported by this kernel")

// IA32 reports whether the kernel runs 32-bit x86 programs. Neither the
// build config nor the command line can say: ia32_emulation= and
// CONFIG_IA32_EMULATION_DEFAULT_DISABLED set it at boot, but the kernel
// also turns it off by itself in some guests (Xen PV, confidential VMs), and
// it exports its state nowhere. So the probe runs a 96-byte i386 program
// from memory: ENOEXEC means off. It costs a fork and an exec (about a
// millisecond): see IA32Cached.
func IA32() error {
	if runtime.GOARCH != "amd64" {
		return fmt.Errorf("32-bit emulation: probed on x86_64 only, not %s", runtime.GOARCH)
	}
	return ia32(execMemfd)
}

// ia32 interprets what running the probe program did.
func ia32(run func(prog []byte) (exit int, err error)) error {
	code, err := run(probe32())
	switch {
	case errors.Is(err, unix.ENOEXEC):
		return fmt.Errorf("32-bit emulation: %w (exec of a 32-bit program: %w; ia32_emulation=0 or CONFIG_IA32_EMULATION off)", ErrNotSupported, err)
	case err != nil:
		return fmt.Errorf("32-bit emulation: probe: %w", err)
	case code != probeExit:
		return fmt.Errorf("32-bit emulation: the probe exited %d, want %d", code, probeExit)
	}
	return nil
}

// probeExit is what the probe passes to exit: proof that its 32-bit
// syscall ran.
const probeExit = 32

// probe32 is a static i386 ELF executable: one PT_LOAD segment holding the
// headers and the code `mov ebx, 32; mov eax, 1 (exit); int 0x80`.
func probe32() []byte {
	const base, ehdr, phdr = 0x08048000, 52, 32
	code := []byte{0xbb, probeExit, 0, 0, 0, 0xb8, 1, 0, 0, 0, 0xcd, 0x80}
	b := make([]byte, ehdr+phdr+len(code))
	le := binary.LittleEndian
	copy(b, "\x7fELF\x01\x01\x01") // ELFCLASS32, little-endian, version 1
	le.PutUint16(b[16:], 2)        // ET_EXEC
	le.PutUint16(b[18:], 3)        // EM_386
	le.PutUint32(b[20:], 1)        // EV_CURRENT
	le.PutUint32(b[24:], base+ehdr+phdr)
	le.PutUint32(b[28:], ehdr) // program headers right after this one
	le.PutUint16(b[40:], ehdr)
	le.PutUint16(b[42:], phdr)
	le.PutUint16(b[44:], 1)
	p := b[ehdr:]
	le.PutUint32(p[0:], 1) // PT_LOAD of the whole file
	le.PutUint32(p[8:], base)
	le.PutUint32(p[12:], base)
	le.PutUint32(p[16:], uint32(len(b)))
	le.PutUint32(p[20:], uint32(len(b)))
	le.PutUint32(p[24:], 5) // PF_R|PF_X
	le.PutUint32(p[28:], 0x1000)
	copy(b[ehdr+phdr:], code)
	return b
}

// execMemfd runs prog from a memfd, so no file is left behind, and returns
// its exit code.
func execMemfd(prog []byte) (int, error) {
	fd, err := unix.MemfdCreate("seccomp-shim-ia32-probe", unix.MFD_CLOEXEC)
	if err != nil {
		return 0, fmt.Errorf("memfd_create: %w", err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, prog); err != nil {
		return 0, err
	}
	// The child looks the path up before exec closes the fd.
	pid, err := syscall.ForkExec(fmt.Sprintf("/proc/self/fd/%d", fd), []string{"ia32-probe"}, &syscall.ProcAttr{})
	if err != nil {
		return 0, err
	}
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return 0, err
	}
	if !ws.Exited() {
		return 0, fmt.Errorf("the probe died: %v", ws)
	}
	return ws.ExitStatus(), nil
}

// iaCacheName is IA32Cached's file in its directory.
const iaCacheName = "ia32"

// IA32Cached is IA32, asked once per boot: the answer is kept in dir (the
// shim's run directory) under the boot's id, since the state is fixed at
// boot. Only a definite answer is kept, only by root, and only a root-owned
// file is believed. dir "" asks the kernel every time.
func IA32Cached(dir string) error {
	if dir == "" {
		return IA32()
	}
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return IA32()
	}
	key := "seccomp-shim-ia32 v1 " + strings.TrimSpace(string(boot)) + " "
	path := filepath.Join(dir, iaCacheName)
	if b, err := readRootFile(path); err == nil {
		switch string(b) {
		case key + "on\n":
			return nil
		case key + "off\n":
			return fmt.Errorf("32-bit emulation: %w (as probed at this boot, %s)", ErrNotSupported, path)
		}
	}
	err = IA32()
	state := "on"
	switch {
	case errors.Is(err, ErrNotSupported):
		state = "off"
	case err != nil:
		return err
	}
	if os.Geteuid() == 0 {
		_ = writeFile(dir, path, key+state+"\n") // costs only the next probe
	}
	return err
}

func readRootFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	if st.Uid != 0 || st.Mode&0o022 != 0 {
		return nil, fmt.Errorf("%s: not root's alone", path)
	}
	b := make([]byte, 128)
	n, err := f.Read(b)
	return b[:n], err
}

// writeFile needs no temporary file and rename: every writer in a boot
// writes the same bytes, and a reader that catches a short file only probes
// again.
func writeFile(dir, path, content string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(content)
	return errors.Join(err, f.Close())
}

// UserNotif reports whether seccomp can hand syscalls to a listener
// (SECCOMP_RET_USER_NOTIF, Linux 5.0), as the kernel lists its actions.
func UserNotif() error {
	b, err := os.ReadFile("/proc/sys/kernel/seccomp/actions_avail")
	if err != nil {
		return fmt.Errorf("seccomp user notification: %w", err)
	}
	if !slices.Contains(strings.Fields(string(b)), "user_notif") {
		return fmt.Errorf("seccomp user notification: %w (no user_notif in actions_avail)", ErrNotSupported)
	}
	return nil
}

// SyncWakeUp reports whether a listener can ask for its waiter to be woken
// on the current CPU (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux 6.6).
func SyncWakeUp() error {
	return since(6, 6, "SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP")
}

// RecvWakesAtExit reports whether a RECV waiting on a filter is woken when
// the filter's last task exits (Linux 6.11); before, it waits for ever.
func RecvWakesAtExit() error {
	return since(6, 11, "a waiting RECV woken when the filter's last task exits")
}

// since answers for notify features by the kernel's release: probing them
// needs a listener, which a process only gets by filtering itself for good.
func since(major, minor int, what string) error {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return fmt.Errorf("%s: uname: %w", what, err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	var ma, mi int
	if _, err := fmt.Sscanf(rel, "%d.%d", &ma, &mi); err != nil {
		return fmt.Errorf("%s: kernel release %q: %w", what, rel, err)
	}
	if ma < major || ma == major && mi < minor {
		return fmt.Errorf("%s: %w (Linux %d.%d, this is %s)", what, ErrNotSupported, major, minor, rel)
	}
	return nil
}
