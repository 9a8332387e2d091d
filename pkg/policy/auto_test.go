package policy

import (
	"errors"
	"runtime"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/seccomp-shim/seccomp-shim/internal/kernelfeat"
)

// architectures = "auto" in both of the kernel's states, given by Compat32,
// and in this machine's, asked of the kernel itself.
func TestArchAuto(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the companions below are x86_64's")
	}
	c := mustConfig(t, "[profiles]\ndir = \"\"\n[[rule]]\narchitectures = \"auto\"\n") // built-ins only
	c.RunDir = t.TempDir()
	arches := func() []specs.Arch {
		t.Helper()
		spec := &specs.Spec{Process: &specs.Process{Args: []string{"sh"}}}
		if _, err := c.Apply(spec, "x"); err != nil {
			t.Fatal(err)
		}
		return spec.Linux.Seccomp.Architectures
	}
	all := []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	c.Compat32 = func() bool { return true }
	if got := arches(); !slices.Equal(got, all) {
		t.Errorf("32-bit emulation on: %v, want %v", got, all)
	}
	c.Compat32 = func() bool { return false }
	if got := arches(); !slices.Equal(got, all[:1]) {
		t.Errorf("32-bit emulation off: %v, want %v", got, all[:1])
	}
	c.Compat32 = nil
	want := all
	if err := kernelfeat.IA32(); errors.Is(err, kernelfeat.ErrNotSupported) {
		want = all[:1]
	} else if err != nil {
		t.Fatal(err)
	}
	if got := arches(); !slices.Equal(got, want) {
		t.Errorf("this kernel (%v): %v, want %v", kernelfeat.IA32(), got, want)
	}
}
