// The shim lives for milliseconds and then execs: reading cgroup limits to
// size GOMAXPROCS, and a goroutine to track them, only cost every start.

//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// Command seccomp-shim is a runc-compatible OCI runtime that applies the
// node's seccomp policy to each container, then execs the real runtime.
package main

import (
	"os"
	"runtime/debug"
	"syscall"

	"github.com/seccomp-shim/seccomp-shim/internal/check"
	"github.com/seccomp-shim/seccomp-shim/internal/passthrough"
	"github.com/seccomp-shim/seccomp-shim/internal/shim"
)

func main() {
	// It lives for milliseconds: collecting garbage would only delay the
	// container. Only a huge config.json (up to specfile.MaxSize) makes
	// garbage worth collecting: it cost 16 times its size without.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(256 << 20)
	dir, _ := os.Getwd()
	s := &shim.Shim{
		Args: os.Args, Env: os.Environ(), Dir: dir,
		Stdout: os.Stdout, Stderr: os.Stderr,
		Exec: syscall.Exec, Self: "/proc/self/exe", Check: check.Run,
		RuntimeCache: passthrough.CachePath,
	}
	os.Exit(s.Run())
}
