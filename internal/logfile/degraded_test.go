package logfile

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestCountDegraded: concurrent creates lose no count; no file reads as 0;
// no directory, no count and no directory made.
func TestCountDegraded(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none")
	if err := CountDegraded(missing); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("a directory was made: %v", err)
	}
	dir := t.TempDir()
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
	if fi, err := os.Stat(filepath.Join(dir, DegradedFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("count file: %v", err)
	}
}
