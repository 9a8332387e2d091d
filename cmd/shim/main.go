// Command seccomp-shim is a runc-compatible OCI runtime that applies the
// node's seccomp policy to each container, then execs the real runtime.
package main

import (
	"os"
	"syscall"

	"github.com/seccomp-shim/seccomp-shim/pkg/check"
	"github.com/seccomp-shim/seccomp-shim/pkg/shim"
)

func main() {
	dir, _ := os.Getwd()
	s := &shim.Shim{
		Args: os.Args, Env: os.Environ(), Dir: dir,
		Stdout: os.Stdout, Stderr: os.Stderr,
		Exec: syscall.Exec, Self: "/proc/self/exe", Check: check.Run,
	}
	os.Exit(s.Run())
}
