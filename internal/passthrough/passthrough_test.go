package passthrough

import (
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	ok := strings.Join([]string{createMagic, "/b", "/usr/local/bin/seccomp-shim", "2", "PATH=/bin", "SECCOMP_SHIM_CONFIG=/c.toml", "4", "seccomp-shim", "create", "--bundle", "/b"}, "\x00") + "\x00"
	r, err := ParseRequest([]byte(ok))
	if err != nil || r.Cwd != "/b" || len(r.Env) != 2 || r.Args[1] != "create" || r.Args[3] != "/b" {
		t.Fatalf("%v %+v", err, r)
	}
	for _, bad := range []string{"", "x\x00", createMagic + "\x00/b\x00/e\x009\x00", createMagic + "\x00/b\x00/e\x000\x001\x00x\x00", ok + "extra\x00", createMagic + "\x00/b\x00/e\x00-1\x00"} {
		if _, err := ParseRequest([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(createMagic + "\x00/b\x00/e\x001\x00PATH=/bin\x002\x00shim\x00create\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := ParseRequest(b); err == nil && len(r.Args) < 2 {
			t.Fatal("accepted a request without a command")
		}
	})
}
