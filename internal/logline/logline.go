// Package logline appends one-line log records to files: the error line
// Docker and containerd read from a runtime's --log file, and the decision
// records of seccomp-shim and seccomp-hook.
package logline

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// Levels, as logrus (and so runc) spells them.
const (
	Error   = "error"
	Warning = "warning"
	Info    = "info"
	Debug   = "debug"
)

// Format renders a record in runc's --log-format: "json" (what containerd
// and Docker parse) or logrus text.
func Format(format, level, msg string, fields map[string]any, now time.Time) []byte {
	ts := now.UTC().Format(time.RFC3339Nano)
	if format == "json" {
		m := map[string]any{"level": level, "msg": msg, "time": ts}
		for k, v := range fields {
			m[k] = v
		}
		b, err := json.Marshal(m)
		if err != nil {
			b, _ = json.Marshal(map[string]any{"level": level, "msg": msg, "time": ts})
		}
		return append(b, '\n')
	}
	var b strings.Builder
	fmt.Fprintf(&b, "time=%q level=%s msg=%q", ts, level, msg)
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%q", k, fmt.Sprint(fields[k]))
	}
	b.WriteByte('\n')
	return []byte(b.String())
}

// Append writes one record to path with a single O_APPEND write, so lines
// from concurrent container starts don't interleave.
func Append(path, format, level, msg string, fields map[string]any) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(Format(format, level, msg, fields, time.Now()))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Enabled reports whether a record at level passes the threshold min
// (error, warn/warning, info, debug).
func Enabled(min, level string) bool {
	rank := map[string]int{Error: 0, "warn": 1, Warning: 1, Info: 2, Debug: 3}
	r, ok := rank[min]
	if !ok {
		r = 2
	}
	return rank[level] <= r
}
