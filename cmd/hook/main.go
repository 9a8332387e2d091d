// Command seccomp-hook is an OCI hook that applies the node's seccomp policy
// in podman's and CRI-O's precreate stage, and checks it in the classic ones.
package main

import (
	"os"

	"github.com/seccomp-shim/seccomp-shim/internal/hook"
)

func main() {
	h := &hook.Hook{Args: os.Args, Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, ErrorLog: hook.DefaultErrorLog}
	os.Exit(h.Run())
}
