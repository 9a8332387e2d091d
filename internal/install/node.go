package install

import (
	"fmt"
	"io"
	"os/exec"
	"syscall"
)

// restartContainerd restarts the node's containerd through the host's
// systemd, from a pod with hostPID: the host's systemctl, run chrooted in
// pid 1's root (/proc/1/root; what `nsenter -t 1 -m` gives, without an
// nsenter in the image), or in root where a test says so. systemctl refuses
// to act from a chroot unless SYSTEMD_IGNORE_CHROOT is set. Needs
// CAP_SYS_CHROOT, and CAP_SYS_PTRACE to reach pid 1's root.
func restartContainerd(root string, out io.Writer) error {
	if root == "" {
		root = "/proc/1/root"
	}
	cmd := exec.Command("/usr/bin/systemctl", "restart", "containerd")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	cmd.Dir = "/"
	cmd.Env = []string{"SYSTEMD_IGNORE_CHROOT=1", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("restarting containerd (systemctl in %s): %w", root, err)
	}
	return nil
}
