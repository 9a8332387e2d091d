package logfile

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestCountDegraded: concurrent creates lose no count; no file reads as 0,
// and the directory is made root-only.
func TestCountDegraded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	if n, err := Degraded(dir); n != 0 || err != nil {
		t.Fatalf("no file: %d, %v", n, err)
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := CountDegraded(dir); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n, err := Degraded(dir); n != 50 || err != nil {
		t.Errorf("after 50: %d, %v", n, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("run dir: %v, %v", fi.Mode(), err)
	}
}
