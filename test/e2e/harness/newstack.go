package harness

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// NewstackEnv names the directory scripts/newstack.sh builds today's stack
// into (its NEWSTACK_CACHE); .ci/run sets it after running the script.
const NewstackEnv = "SECCOMP_SHIM_NEWSTACK"

// NewstackBinary returns bin from the newest finished build (one with its
// .stamp) of scripts/newstack.sh's component name whose version matches
// version, a glob such as "v1.3.*". Without NewstackEnv the test skips and
// says how to get the stack; with it, a missing build fails the test, as CI
// asked for the stack and did not get it.
func NewstackBinary(t testing.TB, name, version, bin string) string {
	t.Helper()
	RequireRoot(t)
	cache := os.Getenv(NewstackEnv)
	if cache == "" {
		t.Skipf("e2e: %s %s not built: run scripts/newstack.sh and set %s=/var/cache/seccomp-shim-newstack (or its NEWSTACK_CACHE)", name, version, NewstackEnv)
	}
	stamps, err := filepath.Glob(filepath.Join(cache, name+"-"+version, ".stamp"))
	if err != nil || len(stamps) == 0 {
		t.Fatalf("e2e: %s=%s has no finished %s %s build: run scripts/newstack.sh (NEWSTACK_CACHE=%s)", NewstackEnv, cache, name, version, cache)
	}
	slices.Sort(stamps) // lexical: enough within one minor version's patch releases below 10
	p := filepath.Join(filepath.Dir(stamps[len(stamps)-1]), bin)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("e2e: %v: run scripts/newstack.sh again", err)
	}
	return p
}
