package logline

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var when = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("CEST", 2*3600))

func TestFormatJSON(t *testing.T) {
	line := Format("json", Error, `seccomp-shim: bad "profile"`+"\n", map[string]any{"id": "c1", "n": 2}, when)
	if !strings.HasSuffix(string(line), "}\n") || strings.Count(string(line), "\n") != 1 {
		t.Fatalf("not one line: %q", line)
	}
	// containerd decodes exactly these three keys from the runtime's log.
	var got struct {
		Level, Msg, Time, ID string
		N                    int
	}
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatal(err)
	}
	if got.Level != "error" || got.Msg != `seccomp-shim: bad "profile"`+"\n" || got.ID != "c1" || got.N != 2 {
		t.Errorf("decoded %+v", got)
	}
	if ts, err := time.Parse(time.RFC3339Nano, got.Time); err != nil || !ts.Equal(when) || !strings.HasSuffix(got.Time, "Z") {
		t.Errorf("time %q: %v", got.Time, err)
	}

	// A field that doesn't marshal must not lose the message.
	line = Format("json", Warning, "m", map[string]any{"bad": func() {}}, when)
	if err := json.Unmarshal(line, &got); err != nil || got.Level != "warning" || got.Msg != "m" {
		t.Errorf("unmarshalable field: %q, %v", line, err)
	}
}

// logrusText is what logrus's TextFormatter writes with DisableColors, as
// runc does with --log-format text: quoted time, bare level, quoted msg.
var logrusText = regexp.MustCompile(`^time="[^"]+" level=[a-z]+ msg="(?:[^"\\]|\\.)*"(?: [a-z_]+="(?:[^"\\]|\\.)*")*\n$`)

func TestFormatText(t *testing.T) {
	for _, format := range []string{"text", ""} {
		line := string(Format(format, Error, "seccomp-shim: a \"b\"\nc", map[string]any{"id": "c1", "bundle": "/b"}, when))
		if !logrusText.MatchString(line) {
			t.Errorf("%q: not logrus text: %q", format, line)
		}
		want := `time="2024-05-06T05:08:09.123456789Z" level=error msg="seccomp-shim: a \"b\"\nc" bundle="/b" id="c1"` + "\n"
		if line != want {
			t.Errorf("%q:\n got %s\nwant %s", format, line, want)
		}
	}
}

func TestEnabled(t *testing.T) {
	for _, tt := range []struct {
		min  string
		pass []string
		drop []string
	}{
		{"error", []string{Error}, []string{Warning, Info, Debug}},
		{"warn", []string{Error, Warning}, []string{Info, Debug}},
		{"warning", []string{Error, Warning}, []string{Info, Debug}},
		{"info", []string{Error, Warning, Info}, []string{Debug}},
		{"debug", []string{Error, Warning, Info, Debug}, nil},
		// The config validates the level, so anything else is "" from a
		// caller that never set one: info, as logrus defaults.
		{"", []string{Error, Warning, Info}, []string{Debug}},
	} {
		for _, l := range tt.pass {
			if !Enabled(tt.min, l) {
				t.Errorf("Enabled(%q, %q) = false", tt.min, l)
			}
		}
		for _, l := range tt.drop {
			if Enabled(tt.min, l) {
				t.Errorf("Enabled(%q, %q) = true", tt.min, l)
			}
		}
	}
}

func TestAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.json")
	if err := os.WriteFile(path, []byte("{\"level\":\"info\",\"msg\":\"runc\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Concurrent container starts share one log file: each record must stay
	// one whole line.
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := Append(path, "json", Error, strings.Repeat("x", 3000), nil); err != nil {
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

	if err := Append(filepath.Join(t.TempDir(), "no", "dir"), "json", Error, "m", nil); err == nil {
		t.Error("Append into a missing directory succeeded")
	}
}
