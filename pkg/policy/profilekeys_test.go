package policy

import (
	"strings"
	"testing"
)

// encoding/json matches keys case-insensitively and takes the last of
// twins: "defaultaction" after "defaultAction" made this profile allow all.
func TestProfileTwinKeys(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{"defaultAction":"SCMP_ACT_ERRNO","defaultaction":"SCMP_ACT_ALLOW"}`, `"defaultaction"`},
		{`{"defaultAction":"SCMP_ACT_ERRNO","defaultAction":"SCMP_ACT_ALLOW"}`, `duplicate key "defaultAction"`},
		{`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["ptrace"],"action":"SCMP_ACT_ERRNO","Action":"SCMP_ACT_ALLOW"}]}`, `"Action"`},
		{`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["x"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"Value":2,"op":"SCMP_CMP_EQ"}]}]}`, `"Value"`},
	} {
		_, err := ParseProfile("twins", "/p/twins.json", []byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "/p/twins.json") {
			t.Errorf("%s:\n got %v\nwant %s", tc.json, err, tc.want)
		}
	}
	// Twins in different objects are fine.
	if _, err := ParseProfile("ok", "ok.json", []byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["a"],"action":"SCMP_ACT_ALLOW"},{"names":["b"],"action":"SCMP_ACT_ALLOW"}]}`)); err != nil {
		t.Error(err)
	}
}
