package policy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const cachedProfile = `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
{"names":["chown32"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_CHOWN"]}}]}`

// cacheConfig is a policy whose one rule gives the profile file "p", with
// the compiled-profile cache in a temp dir.
func cacheConfig(t *testing.T) (*Config, Choice, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the compiled-profile cache is root's only; run as root")
	}
	dir := t.TempDir()
	c := DefaultConfig()
	c.Profiles.Dir = filepath.Join(dir, "profiles")
	c.Profiles.CacheDir = filepath.Join(dir, "run", "cache")
	if err := os.Mkdir(c.Profiles.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(c.Profiles.Dir, "p.json"), cachedProfile)
	return c, Choice{Rule: "r", Profile: "p", Architectures: StringList{ArchProfile}}, c.Profiles.CacheDir
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*"))
	hidden, _ := filepath.Glob(filepath.Join(dir, ".*"))
	return append(m, hidden...)
}

func resolveJSON(t *testing.T, c *Config, d Choice, spec *specs.Spec) (string, []string) {
	t.Helper()
	sc, warnings, err := c.Resolve(d, spec)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(sc)
	return string(b), warnings
}

// TestCacheSameResult: a cached profile resolves to exactly what the
// uncached path gives, the entry is root's alone, and each capability set
// gets its own entry.
func TestCacheSameResult(t *testing.T) {
	c, d, dir := cacheConfig(t)
	uncached := *c
	uncached.Profiles.CacheDir = ""
	chown := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}}}}
	for _, spec := range []*specs.Spec{nil, chown} {
		want, _ := resolveJSON(t, &uncached, d, spec)
		for i := 0; i < 2; i++ { // a miss, then a hit
			if got, w := resolveJSON(t, c, d, spec); got != want || len(w) != 0 {
				t.Errorf("run %d: %s, warnings %q; want %s", i, got, w, want)
			}
		}
	}
	files := entries(t, dir)
	if len(files) != 2 {
		t.Fatalf("entries %q, want one per capability set", files)
	}
	for _, f := range append(files, dir) {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]os.FileMode{true: 0o700, false: 0o600}[fi.IsDir()]; fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", f, fi.Mode().Perm(), want)
		}
	}
}

// TestCacheNeverOverInputs: an entry is used only while every input is as
// it was, and only if root alone could have written it.
func TestCacheNeverOverInputs(t *testing.T) {
	c, d, dir := cacheConfig(t)
	resolveJSON(t, c, d, nil)
	files := entries(t, dir)
	if len(files) != 1 {
		t.Fatalf("entries %q", files)
	}
	// Doctor the entry: while it is trusted, it is what Resolve returns,
	// which shows that hits skip the work.
	data, _ := os.ReadFile(files[0])
	doctored := strings.Replace(string(data), `"defaultAction":"SCMP_ACT_ERRNO"`, `"defaultAction":"SCMP_ACT_KILL"`, 1)
	writeFile(t, files[0], doctored)
	os.Chmod(files[0], 0o600)
	if got, _ := resolveJSON(t, c, d, nil); !strings.Contains(got, "SCMP_ACT_KILL") {
		t.Fatalf("the entry was not used: %s", got)
	}
	for name, spoil := range map[string]func(){
		"writable by others": func() { os.Chmod(files[0], 0o622) },
		"not root's":         func() { os.Chown(files[0], 1, 1) },
		"a symlink": func() {
			os.Rename(files[0], files[0]+".real")
			os.Symlink(files[0]+".real", files[0])
		},
	} {
		writeFile(t, files[0], doctored)
		os.Chmod(files[0], 0o600)
		spoil()
		if got, _ := resolveJSON(t, c, d, nil); strings.Contains(got, "SCMP_ACT_KILL") {
			t.Errorf("entry %s: used", name)
		}
		os.Remove(files[0])
		os.Remove(files[0] + ".real")
		resolveJSON(t, c, d, nil)
	}
	// A changed profile is a new entry, whatever the old one says.
	writeFile(t, files[0], doctored)
	time.Sleep(10 * time.Millisecond) // a new mtime even on coarse clocks
	writeFile(t, filepath.Join(c.Profiles.Dir, "p.json"), strings.Replace(cachedProfile, "SCMP_ACT_ERRNO", "SCMP_ACT_TRAP", 1))
	if got, _ := resolveJSON(t, c, d, nil); !strings.Contains(got, "SCMP_ACT_TRAP") {
		t.Errorf("the changed profile was not read: %s", got)
	}
	// An invalid profile is an error every time; nothing is cached for it.
	writeFile(t, filepath.Join(c.Profiles.Dir, "p.json"), `{"defaultAction":"SCMP_ACT_NOPE"}`)
	for i := 0; i < 2; i++ {
		if _, _, err := c.Resolve(d, nil); err == nil {
			t.Errorf("run %d: an invalid profile resolved", i)
		}
	}
}

// TestCacheUntrustedDir: a cache directory others can write is not used,
// and says so; the container still gets its profile.
func TestCacheUntrustedDir(t *testing.T) {
	c, d, dir := cacheConfig(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	got, warnings := resolveJSON(t, c, d, nil)
	if !strings.Contains(got, "SCMP_ACT_ERRNO") || len(warnings) != 1 || !strings.Contains(warnings[0], "profiles.cache_dir "+dir+" not used") {
		t.Errorf("%s, warnings %q", got, warnings)
	}
	if files := entries(t, dir); len(files) != 0 {
		t.Errorf("wrote %q to an untrusted cache", files)
	}
}

// TestCacheConcurrent: creates racing on a cold cache all get the profile,
// and leave one whole entry and no temporary files.
func TestCacheConcurrent(t *testing.T) {
	c, d, dir := cacheConfig(t)
	want, _ := resolveJSON(t, &Config{Profiles: ProfilesConfig{Dir: c.Profiles.Dir}}, d, nil)
	var wg sync.WaitGroup
	got := make([]*specs.LinuxSeccomp, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _, _ = c.Resolve(d, nil)
		}()
	}
	wg.Wait()
	for i, sc := range got {
		b, _ := json.Marshal(sc)
		if string(b) != want {
			t.Errorf("create %d: %s", i, b)
		}
	}
	if files := entries(t, dir); len(files) != 1 || strings.HasPrefix(filepath.Base(files[0]), ".") {
		t.Errorf("entries %q, want one", files)
	}
}
