package specfile

import (
	"strings"
	"testing"
)

func TestCheckKeys(t *testing.T) {
	for doc, want := range map[string]string{
		`{"a":1,"b":{"c":[{"d":1},{"d":2,"D":3}]}}`: `key "D" (byte 35) would also be decoded as "d"`,
		`{"a":[],"a":1}`:         `duplicate key "a"`,
		"{\"k\":1,\"\u212a\":2}": `would also be decoded as "k"`, // the Kelvin sign
		`{"a":1,"b":{"a":2,"B":{"b":3}},"c":[[{"c":1}]]}`: "",
		`{"a":`: "unexpected EOF",
	} {
		err := CheckKeys([]byte(doc))
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: got %v, want %q", doc, err, want)
		}
	}
}
