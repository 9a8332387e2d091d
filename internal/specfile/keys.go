package specfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// CheckKeys fails if any object in data, at any depth, has two members whose
// keys are equal, or equal but for case. encoding/json, which moby's profile
// loader and runc decode with, matches keys to fields case-insensitively and
// keeps the last, so a reader would see one member and the decoder use the
// other: "defaultAction" then "defaultaction" made a profile allow all.
func CheckKeys(data []byte) error {
	type frame struct {
		keys        map[string]string // folded key: as written
		object, key bool              // key: the next token is a key
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for read := false; ; read = true {
		tok, err := dec.Token()
		if err == io.EOF && read && len(stack) == 0 {
			return nil
		}
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
		var top *frame
		if n := len(stack); n > 0 {
			top = stack[n-1]
		}
		if k, ok := tok.(string); ok && top != nil && top.key {
			f := fold(k)
			if prev, dup := top.keys[f]; dup && prev == k {
				return fmt.Errorf("duplicate key %q (byte %d)", k, dec.InputOffset())
			} else if dup {
				return fmt.Errorf("key %q (byte %d) would also be decoded as %q", k, dec.InputOffset(), prev)
			}
			top.keys[f], top.key = k, false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{keys: map[string]string{}, object: true, key: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: in an object, a key comes next.
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].key = true
		}
	}
}

// fold maps each rune to the least of its case-folding orbit, so that two
// keys fold alike exactly when encoding/json would match one for the other
// (K and the Kelvin sign included).
func fold(s string) string {
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}, s)
}
