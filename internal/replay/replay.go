// Package replay answers a container's notified syscalls as its profile
// answered them before the shim routed them to the notify agent, from what
// the shim wrote in the profile's listenerMetadata. The agent (pkg/notify)
// answers with it where no rule decides; the holder (internal/holder), which
// must never restart, answers with it alone while no agent is connected, so
// this package stays small: the metadata, and the answer it gives.
package replay

import (
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/pkg/unotify"
	"golang.org/x/sys/unix"
)

// Meta travels to the notify agent as the profile's listenerMetadata.
// It says how each syscall routed to the agent was answered before it was
// routed, so the agent answers exactly that and the workload can't tell.
type Meta struct {
	V       int    `json:"v"`
	Rule    string `json:"rule,omitempty"`
	Profile string `json:"profile,omitempty"`
	// Errno answers every routed syscall not in Errnos: the profile's
	// default errno, or 0 if its default is not a denial.
	Errno  uint            `json:"errno"`
	Errnos map[string]uint `json:"errnos,omitempty"`
	// ENOSYSAbove holds, per architecture, the highest syscall number the
	// original profile named: runc answers ENOSYS above it, not Errno.
	ENOSYSAbove map[specs.Arch]int `json:"enosysAbove,omitempty"`
	// Record is the name the agent records a container in complain mode
	// under (policy.Choice.Record), "" for none.
	Record string `json:"record,omitempty"`
}

// Parse decodes listenerMetadata written by policy.Audit.
func Parse(s string) (*Meta, error) {
	var m Meta
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("listener metadata: %w", err)
	}
	if m.V != 1 {
		return nil, fmt.Errorf("listener metadata: version %d, want 1", m.V)
	}
	return &m, nil
}

// Answer is the profile's answer to syscall (the name of d's call), and
// whether the call is newer than any the profile named, which runc answers
// with ENOSYS. With no metadata (nil m) it is EPERM: fail closed.
func (m *Meta) Answer(d *unotify.Data, syscall string) (errno uint, above bool) {
	if m == nil {
		return uint(unix.EPERM), false
	}
	if e, ok := m.Errnos[syscall]; ok {
		return e, false
	}
	if a, ok := d.ABI(); ok {
		if highest, ok := m.ENOSYSAbove[a.Spec]; ok && int(d.Nr) > highest {
			return uint(unix.ENOSYS), true
		}
	}
	return m.Errno, false
}
