// Command seccomp-install installs seccomp-shim on a node and registers it
// with the node's container engines, or undoes exactly that.
package main

import (
	"os"

	"github.com/seccomp-shim/seccomp-shim/internal/install"
	"github.com/seccomp-shim/seccomp-shim/internal/install/kube"
)

func main() { os.Exit(install.Main(os.Args[1:], os.Stdout, os.Stderr, kube.Command(os.Stdout))) }
