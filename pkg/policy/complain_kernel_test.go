package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// complainChildEnv makes the test binary the child that loads a filter
// (irreversible: a process of its own) and reports how it answers.
const complainChildEnv = "SECCOMP_SHIM_COMPLAIN_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(complainChildEnv) == "1" {
		if err := complainChild(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// filterJob is what the child filters: rules (their names ignored) put on
// getppid, which ignores its arguments while the filter sees them, and the
// argument values to call it with.
type filterJob struct {
	Rules  []specs.LinuxSyscall
	Values [][6]uint64
}

// Markers the child's filter answers with, as errnos.
const (
	markAllow  = 100 // an allow rule of the profile matched
	markNotify = 101 // a notify rule of the complement matched
)

// complainChild builds the rules with libseccomp as runc does (a rule
// naming one argument twice becomes one rule per condition), loads the
// filter on its thread, calls getppid with each set of values and prints
// the errno of each.
func complainChild() error {
	var job filterJob
	if err := json.NewDecoder(os.Stdin).Decode(&job); err != nil {
		return err
	}
	runtime.LockOSThread()
	f, err := libseccomp.NewFilter(libseccomp.ActAllow)
	if err != nil {
		return err
	}
	nr, err := libseccomp.GetSyscallFromName("getppid")
	if err != nil {
		return err
	}
	ops := map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
		specs.OpEqualTo: libseccomp.CompareEqual, specs.OpNotEqual: libseccomp.CompareNotEqual,
		specs.OpLessThan: libseccomp.CompareLess, specs.OpLessEqual: libseccomp.CompareLessOrEqual,
		specs.OpGreaterThan: libseccomp.CompareGreater, specs.OpGreaterEqual: libseccomp.CompareGreaterEqual,
		specs.OpMaskedEqual: libseccomp.CompareMaskedEqual,
	}
	for _, r := range job.Rules {
		act := libseccomp.ActErrno.SetReturnCode(markAllow)
		if r.Action == specs.ActNotify {
			act = libseccomp.ActErrno.SetReturnCode(markNotify)
		}
		var conds []libseccomp.ScmpCondition
		for _, a := range r.Args {
			c, err := libseccomp.MakeCondition(a.Index, ops[a.Op], a.Value, a.ValueTwo)
			if err != nil {
				return err
			}
			conds = append(conds, c)
		}
		if splitByRunc(r.Args) { // runc's matchCall
			for _, c := range conds {
				if err := f.AddRuleConditional(nr, act, []libseccomp.ScmpCondition{c}); err != nil {
					return err
				}
			}
		} else if err := f.AddRuleConditional(nr, act, conds); err != nil {
			return err
		}
	}
	if err := f.Load(); err != nil {
		return err
	}
	var out strings.Builder
	for _, v := range job.Values {
		_, _, e := unix.Syscall6(unix.SYS_GETPPID, uintptr(v[0]), uintptr(v[1]), uintptr(v[2]), uintptr(v[3]), uintptr(v[4]), uintptr(v[5]))
		fmt.Fprintf(&out, "%d\n", int(e))
	}
	_, err = os.Stdout.WriteString(out.String())
	return err
}

// kernelAnswers runs job in a child and returns its errno per value.
func kernelAnswers(t *testing.T, job filterJob) []int {
	t.Helper()
	in, _ := json.Marshal(job)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), complainChildEnv+"=1")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v: %s", err, stderr.String())
	}
	var got []int
	for _, l := range strings.Fields(string(out)) {
		var e int
		fmt.Sscan(l, &e)
		got = append(got, e)
	}
	if len(got) != len(job.Values) {
		t.Fatalf("child answered %d of %d calls: %s", len(got), len(job.Values), stderr.String())
	}
	return got
}
