// Command seccomp-agent receives containers' seccomp notify fds from runc,
// answers their notified syscalls, and writes the audit log of denials.
package main

import (
	"os"

	"github.com/seccomp-shim/seccomp-shim/internal/agentcmd"
)

func main() { os.Exit(agentcmd.Main(os.Args[1:], os.Stdout, os.Stderr)) }
