// Package policy decides which seccomp profile a container runs with.
//
// It reads profiles (Docker's JSON format or a plain OCI LinuxSeccomp),
// resolves them against a container's spec with github.com/moby/profiles,
// validates them against libseccomp's syscall tables (as generated into
// pkg/unotify), and evaluates the node's ordered rules (config.toml) to
// choose a profile per container. Apply is the one entry point that both seccomp-shim and
// seccomp-hook call, so the two can never disagree.
package policy
