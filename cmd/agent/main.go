// Command seccomp-agent receives containers' seccomp notify fds from runc,
// answers their notified syscalls, and writes the audit log of denials.
package main

import (
	"os"

	"github.com/seccomp-shim/seccomp-shim/pkg/agent"
)

func main() { os.Exit(agent.Main(os.Args[1:], os.Stdout, os.Stderr)) }
