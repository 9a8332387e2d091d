package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// AnnotationRecord asks for the container to be recorded under a name, where
// its rule's allowed_recordings has a pattern the name matches.
const AnnotationRecord = "seccomp-shim.io/record"

// DefaultRecordDir is where the agent keeps recordings unless [record] dir
// says otherwise: never profiles.dir, as a recording becomes a profile only
// when an operator installs it.
const DefaultRecordDir = "/var/lib/seccomp-shim/recordings"

// RecordConfig is the [record] table: where recordings are kept.
type RecordConfig struct {
	Dir string `toml:"dir"`
}

// The recording baseline: syscalls a recording container's profile allows
// directly, without the agent, and that every recorded profile allows
// (internal/recording). They are the ones every program and the runtime
// make, and the hottest of them, so that a recorded workload pays the
// agent's round trip only for the rest. Each was measured
// (docs/recording.md tells how to repeat it); each is allowed
// unconditionally by Docker's default profile (a test checks it), so the
// baseline never allows what Docker's default would deny.
var (
	// What runc init makes between loading the filter and exec'ing the
	// workload, with and without noNewPrivileges, and what its Go runtime
	// may make in that window: strict's groups (measured under runc 1.1),
	// prctl whole, and what runc 1.3.0 adds: close_range and faccessat2
	// (strict leaves it out to keep runc's ENOSYS for clone3; a recorded
	// profile answers clone3 itself). TestRecordLoop records under one runc
	// and enforces under the other. Mode 1's five with them: read and
	// write, exit, and rt_sigreturn (write in any case: runc refuses to
	// notify it).
	recordRuntime = slices.Concat(strictMode1, strictRuncInit, strictRuncInitPrivileged, []string{
		"prctl", "close_range", "faccessat2",
	})
	// What a static program (busybox, Go) makes before main.
	recordStart = slices.Concat(strictStaticStartup, []string{"rt_sigaction", "sched_getaffinity"})
	// What busybox httpd and a Go server make per request or per wake-up:
	// reading and writing files and sockets, waiting, time.
	recordEveryday = []string{
		"clock_gettime", "clock_nanosleep", "epoll_pwait", "epoll_wait", "gettimeofday",
		"lseek", "pread64", "pwrite64", "readv", "restart_syscall", "writev",
	}
)

// RecordBaseline returns the recording baseline's names, sorted, each once.
func RecordBaseline() []string {
	var all []string
	for _, g := range [][]string{recordRuntime, recordStart, recordEveryday} {
		all = append(all, g...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// RecordingProfile names the profile of a container recorded under name,
// as Choice.Profile and in logs and audit records. It is no profile name a
// rule or an annotation could give.
func RecordingProfile(name string) string { return "recording:" + name }

// recordingProfile is what a recorded container runs under, in complain
// mode: the baseline allowed, everything else denied, so that it reaches the
// agent, which lets it run and records it. Its architectures are those of
// Docker's default profile on this host, so a 32-bit program is recorded
// rather than killed.
func recordingProfile(name string) *Profile {
	p := &mobyseccomp.Seccomp{ArchMap: mobyseccomp.DefaultProfile().ArchMap}
	p.DefaultAction = specs.ActErrno
	p.Syscalls = []*mobyseccomp.Syscall{{LinuxSyscall: specs.LinuxSyscall{Names: RecordBaseline(), Action: specs.ActAllow}}}
	data, err := json.Marshal(p)
	if err != nil {
		panic("policy: the recording profile does not marshal: " + err.Error())
	}
	return &Profile{Name: RecordingProfile(name), Source: "built-in recording profile", JSON: data}
}

// recordRequest decides whether the container is recorded: by its rule's
// record, or by its AnnotationRecord where the rule's allowed_recordings
// allows the name. A recorded container runs the recording profile in
// complain mode, whatever profile the engine gave it. The annotation
// seccomp-shim.io/complain=false (enforce) turns a rule's recording off;
// with a record annotation it is a contradiction. A pod's pause container
// is never recorded (CRI copies the pod's annotations to it).
func (d *Choice) recordRequest(r Rule, ctr Container, k kube) error {
	if k.sandbox() {
		return nil
	}
	name := r.Record
	enforce := ctr.Annotations[AnnotationComplain] == "false"
	if v, ok := ctr.Annotations[AnnotationRecord]; ok {
		switch {
		case !ValidName(v):
			return fmt.Errorf("annotation %s=%q: not a recording name (%s): %w", AnnotationRecord, v, profileNameRule, ErrNotAllowed)
		case len(r.AllowedRecordings) == 0:
			return fmt.Errorf("annotation %s=%q: rule %q allows no recording (it has no allowed_recordings): %w", AnnotationRecord, v, r.Name, ErrNotAllowed)
		case !slices.ContainsFunc(r.AllowedRecordings, func(p string) bool { return Glob(p, v) }):
			return fmt.Errorf("annotation %s=%q: rule %q allows recording only as %q: %w", AnnotationRecord, v, r.Name, r.AllowedRecordings, ErrNotAllowed)
		case enforce:
			return fmt.Errorf("annotations %s=%q and %s=false: recording runs in complain mode, which the second refuses", AnnotationRecord, v, AnnotationComplain)
		}
		name = v
	}
	if name == "" || enforce {
		return nil
	}
	d.Record, d.Complain, d.Existing, d.Profile = name, true, ExistingReplace, RecordingProfile(name)
	return nil
}

// validateRecord checks a rule's record and allowed_recordings.
func (r *Rule) validateRecord() error {
	var errs []error
	if r.Record != "" && !ValidName(r.Record) {
		errs = append(errs, fmt.Errorf("record %q: must be %s", r.Record, profileNameRule))
	}
	for i, p := range r.AllowedRecordings {
		if p == "" || strings.ContainsAny(p, "/") {
			errs = append(errs, fmt.Errorf("allowed_recordings[%d] %q: must be a name or a glob of names", i, p))
		}
	}
	return errors.Join(errs...)
}
