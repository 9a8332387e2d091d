// Package policy decides which seccomp profile a container runs with.
//
// It reads profiles (Docker's JSON format or a plain OCI LinuxSeccomp),
// resolves them against a container's spec with github.com/moby/profiles,
// validates them against the syscall tables of the libseccomp that runc links,
// and evaluates the node's ordered rules (config.toml) to choose a profile per
// container. Apply is the one entry point that both seccomp-shim and
// seccomp-hook call, so the two can never disagree.
package policy
