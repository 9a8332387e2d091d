package childtest

import (
	"fmt"
	"testing"

	"github.com/seccomp-shim/seccomp-shim/internal/kernelfeat"
)

// gated runs a subtest behind require and says whether it got past it and
// whether it skipped.
func gated(t *testing.T, require func(testing.TB)) (ran, skipped bool) {
	t.Run("gated", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		require(t)
		ran = true
	})
	return ran, skipped
}

// The skip path, proven on a machine whose kernel has the feature: a probe
// that says "not supported" skips, one that says yes runs the test.
func TestRequireFeature(t *testing.T) {
	absent := fmt.Errorf("x: %w", kernelfeat.ErrNotSupported)
	if ran, skipped := gated(t, func(tb testing.TB) { RequireFeature(tb, absent) }); ran || !skipped {
		t.Errorf("absent feature: ran %v, skipped %v", ran, skipped)
	}
	if ran, skipped := gated(t, func(tb testing.TB) { RequireFeature(tb, nil) }); !ran || skipped {
		t.Errorf("present feature: ran %v, skipped %v", ran, skipped)
	}
}

func TestAssumeNoIA32(t *testing.T) {
	t.Setenv(AssumeNoIA32Env, "1")
	if ran, skipped := gated(t, RequireIA32); ran || !skipped {
		t.Errorf("%s=1: ran %v, skipped %v", AssumeNoIA32Env, ran, skipped)
	}
}
