// Package install is the seccomp-install command: it puts seccomp-shim on a
// node (binaries, the default policy, the agent's systemd units) and
// registers the runtime with each container engine found there, and it
// undoes exactly that.
//
// Engines' configs belong to the node's owner, so every change is the
// smallest one that works and can be taken back byte for byte:
//
//   - daemon.json is edited as text: one member is inserted where a person
//     would have typed it, every other byte stays, and uninstall cuts out the
//     same bytes.
//   - containerd, podman and CRI-O get a drop-in file of their own. The only
//     edit to containerd's config.toml is the `imports` entry that makes
//     containerd read the drop-in, and it is recorded so that uninstall
//     removes it only if install added it.
//   - What install changed in files it does not own is recorded in
//     /etc/seccomp-shim/install-state.json, without timestamps, so that
//     installing twice leaves every file byte for byte as the first install
//     did.
//
// Every path is taken relative to --root, so the tests (and a DaemonSet with
// the host's / mounted at /host) work on a tree that is not the running
// system. Nothing here starts, stops or signals a process: restarting an
// engine is left to the operator, who is told which one.
package install
