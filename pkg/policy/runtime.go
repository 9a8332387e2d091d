package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrNoRuntime is returned when no runtime.path candidate is usable.
var ErrNoRuntime = errors.New("no runtime found")

// defaultPATH is searched when the caller has no PATH, like execvp does.
const defaultPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// FindRuntime returns the first runtime.path candidate that is an
// executable file and not self (nil: no such check). Names are looked up in
// the absolute elements of pathEnv, the caller's PATH, not this process's:
// engines and tests pass the environment explicitly.
func (c *Config) FindRuntime(pathEnv string, self os.FileInfo) (string, error) {
	if pathEnv == "" {
		pathEnv = defaultPATH
	}
	for _, cand := range c.Runtime.Path {
		paths := []string{cand}
		if !filepath.IsAbs(cand) {
			paths = nil
			for _, dir := range filepath.SplitList(pathEnv) {
				// Unlike execvp, never "" or a relative element: they name
				// the working directory, for the shim the bundle, whose
				// content is the container's.
				if filepath.IsAbs(dir) {
					paths = append(paths, filepath.Join(dir, cand))
				}
			}
		}
		for _, p := range paths {
			fi, err := os.Stat(p)
			if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				continue
			}
			if self != nil && os.SameFile(self, fi) {
				continue // installed as "runc", or a config naming us: never loop
			}
			return p, nil
		}
	}
	what := "an executable"
	if self != nil {
		what += " other than seccomp-shim itself"
	}
	return "", fmt.Errorf("%w: none of %q is %s (config %s, runtime.path)", ErrNoRuntime, []string(c.Runtime.Path), what, c.Source)
}
