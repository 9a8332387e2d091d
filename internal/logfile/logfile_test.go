package logfile

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/sirupsen/logrus"
)

func TestEngineJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.json")
	if err := Engine(path, "json", logrus.ErrorLevel, `seccomp-shim: bad "profile"`+"\n"); err != nil {
		t.Fatal(err)
	}
	line, _ := os.ReadFile(path)
	if !strings.HasSuffix(string(line), "}\n") || strings.Count(string(line), "\n") != 1 {
		t.Fatalf("not one line: %q", line)
	}
	// containerd decodes exactly these three keys from the runtime's log.
	var got map[string]string
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["level"] != "error" || got["msg"] != `seccomp-shim: bad "profile"`+"\n" {
		t.Errorf("decoded %v", got)
	}
	if _, err := time.Parse(time.RFC3339Nano, got["time"]); err != nil {
		t.Errorf("time %q: %v", got["time"], err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want runc's 0644", fi.Mode())
	}
}

// logrusText is what logrus's TextFormatter writes to a file, as runc does
// with --log-format text: quoted time, bare level, quoted msg.
var logrusText = regexp.MustCompile(`^time="[^"]+" level=error msg="seccomp-shim: a \\"b\\"\\nc"\n$`)

func TestEngineText(t *testing.T) {
	for _, format := range []string{"text", ""} {
		path := filepath.Join(t.TempDir(), "log")
		if err := Engine(path, format, logrus.ErrorLevel, "seccomp-shim: a \"b\"\nc"); err != nil {
			t.Fatal(err)
		}
		if line, _ := os.ReadFile(path); !logrusText.Match(line) {
			t.Errorf("%q: not logrus text: %q", format, line)
		}
	}
}

func TestNodeLevels(t *testing.T) {
	for _, tt := range []struct {
		min  string
		pass []logrus.Level
		drop []logrus.Level
	}{
		{"error", []logrus.Level{logrus.ErrorLevel}, []logrus.Level{logrus.WarnLevel, logrus.InfoLevel, logrus.DebugLevel}},
		{"warn", []logrus.Level{logrus.ErrorLevel, logrus.WarnLevel}, []logrus.Level{logrus.InfoLevel, logrus.DebugLevel}},
		{"info", []logrus.Level{logrus.ErrorLevel, logrus.WarnLevel, logrus.InfoLevel}, []logrus.Level{logrus.DebugLevel}},
		{"debug", []logrus.Level{logrus.ErrorLevel, logrus.WarnLevel, logrus.InfoLevel, logrus.DebugLevel}, nil},
		// The config validates the level, so anything else is "" from a
		// caller that never set one: info, as logrus defaults.
		{"", []logrus.Level{logrus.ErrorLevel, logrus.WarnLevel, logrus.InfoLevel}, []logrus.Level{logrus.DebugLevel}},
	} {
		for _, l := range append(tt.pass, tt.drop...) {
			path := filepath.Join(t.TempDir(), "node.log")
			if err := Node(policy.LogConfig{File: path, Level: tt.min}, l, "m", logrus.Fields{"id": "c1"}); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(path)
			var m map[string]any
			written := json.Unmarshal(data, &m) == nil && m["level"] == l.String() && m["id"] == "c1"
			if passes := slices.Contains(tt.pass, l); passes != (len(data) > 0) || passes && !written {
				t.Errorf("min %q, level %v: written %q", tt.min, l, data)
			}
		}
	}
	if err := Node(policy.LogConfig{Level: "debug"}, logrus.ErrorLevel, "m", nil); err != nil {
		t.Errorf("no log.file: %v", err)
	}
}

func TestNodeAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.json")
	if err := os.WriteFile(path, []byte("{\"level\":\"info\",\"msg\":\"runc\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Concurrent container starts share one log file: each record must stay
	// one whole line.
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := Node(policy.LogConfig{File: path}, logrus.ErrorLevel, strings.Repeat("x", 3000), nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 21 || lines[0] != `{"level":"info","msg":"runc"}` {
		t.Fatalf("%d lines, first %.40q", len(lines), lines[0])
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Fatalf("torn line %.60q", l)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode changed to %v", fi.Mode())
	}
	if err := Node(policy.LogConfig{File: filepath.Join(t.TempDir(), "no", "dir")}, logrus.ErrorLevel, "m", nil); err == nil {
		t.Error("logging into a missing directory succeeded")
	}
}
