// Package logfile writes seccomp-shim's and seccomp-hook's log records with
// logrus: the engine's --log file exactly as runc configures logrus for it
// (Docker and containerd read a failing runtime's error only from there),
// and the node's log.file of policy decisions.
package logfile

import (
	"os"
	"time"

	"github.com/seccomp-shim/seccomp-shim/pkg/policy"
	"github.com/sirupsen/logrus"
)

// Engine appends one record to a runtime's --log file in its --log-format,
// set up as runc's configLogrus does (runc 1.1 to 1.3): JSON for "json",
// logrus' TextFormatter otherwise; the file opened O_APPEND|O_SYNC, 0644.
// Engines parse the JSON {"level":"error","msg":"...","time":"..."}.
func Engine(path, format string, level logrus.Level, msg string) error {
	var f logrus.Formatter = new(logrus.TextFormatter)
	if format == "json" {
		f = new(logrus.JSONFormatter)
	}
	return write(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644, f, level, msg, nil)
}

// Node appends one JSON record to the node's log.file if the config names
// one and its log.level lets level through. Nanosecond times: several
// records of one container start share a second.
func Node(cfg policy.LogConfig, level logrus.Level, msg string, fields logrus.Fields) error {
	min, err := logrus.ParseLevel(cfg.Level)
	if err != nil {
		min = logrus.InfoLevel // the config validates it; unset means logrus' default
	}
	if cfg.File == "" || level > min {
		return nil
	}
	f := &logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano}
	return write(cfg.File, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640, f, level, msg, fields)
}

// Result describes a policy decision as log fields.
func Result(res *policy.Result) logrus.Fields {
	fields := logrus.Fields{"rule": res.Rule, "profile": res.InForce(), "action": res.Action}
	if res.Audit != "" {
		fields["audit"] = res.Audit
	}
	if len(res.Warnings) > 0 {
		fields["warnings"] = res.Warnings
	}
	return fields
}

// write logs one entry with its own logger: logrus formats it in a buffer
// and writes it with one write(2), so with O_APPEND the records of
// concurrent container starts never interleave.
func write(path string, flag int, perm os.FileMode, f logrus.Formatter, level logrus.Level, msg string, fields logrus.Fields) error {
	file, err := os.OpenFile(path, flag, perm)
	if err != nil {
		return err
	}
	l := logrus.New()
	l.Out, l.Formatter, l.Level = file, f, logrus.TraceLevel
	l.WithFields(fields).Log(level, msg)
	return file.Close()
}
