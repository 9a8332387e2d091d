// Package specfile patches an OCI bundle's config.json in place.
//
// Decoding into specs.Spec and re-encoding would silently drop every field
// the vendored runtime-spec does not know, so the document is patched as raw
// JSON instead: only the objects on the patched path are re-assembled, and
// every other member keeps its bytes and its position. The file is replaced
// the way containerd's pkg/atomicfile does it, so runc never sees a
// half-written config and the owner and mode chosen by whoever created the
// bundle survive.
//
// Typical use:
//
//	f, err := specfile.Read(filepath.Join(bundle, "config.json"))
//	...
//	doc, err := specfile.SetPath(f.Data, profile, "linux", "seccomp")
//	...
//	changed, err := f.WriteAtomic(specfile.Format(f.Data, doc))
package specfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

type member struct {
	key    string // decoded, for lookups
	rawKey string // as written, so escapes in keys survive too
	raw    json.RawMessage
}

// Object is a JSON object whose members keep their order and exact bytes.
type Object struct{ members []member }

// ParseObject parses data, which must be exactly one JSON object. Duplicate
// keys are an error rather than last-wins: runc would pick one of them, and
// patching the other would leave the member runc uses untouched.
func ParseObject(data []byte) (*Object, error) {
	o, err := parseObject(data)
	if err != nil {
		return nil, fmt.Errorf("specfile: %w", err)
	}
	return o, nil
}

func parseObject(data []byte) (*Object, error) {
	_, _, spans, err := Scan(data)
	if err != nil {
		return nil, err
	}
	o := &Object{members: make([]member, len(spans))}
	for i, m := range spans {
		o.members[i] = member{key: m.Key, rawKey: string(data[m.KeyStart:m.KeyEnd]), raw: data[m.ValueStart:m.ValueEnd:m.ValueEnd]}
	}
	return o, nil
}

// Span locates one member of an object in the document's bytes.
type Span struct {
	Key                  string // decoded
	KeyStart, KeyEnd     int    // the key as written, quotes included
	ValueStart, ValueEnd int
}

// Scan locates the object that is exactly data, apart from surrounding
// whitespace: the offsets of its braces and of each member, in order.
// Duplicate keys are an error rather than last-wins: runc (or dockerd) would
// pick one of them, and editing the other would leave the member in force
// untouched.
//
// It is the one order-preserving JSON scanner: Object patches config.json
// with it, and seccomp-install edits daemon.json with it, splicing the text
// so that uninstall can give the file back byte for byte.
func Scan(data []byte) (open, close int, members []Span, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil {
		return 0, 0, nil, noEOF(err)
	} else if tok != json.Delim('{') {
		return 0, 0, nil, errors.New("not a JSON object")
	}
	open = int(dec.InputOffset()) - 1
	seen := map[string]bool{}
	for dec.More() {
		before := int(dec.InputOffset())
		tok, err := dec.Token()
		if err != nil {
			return 0, 0, nil, noEOF(err)
		}
		key, ok := tok.(string)
		if !ok {
			return 0, 0, nil, fmt.Errorf("object key is %v, not a string", tok)
		}
		if seen[key] {
			return 0, 0, nil, fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		// The offset before the key spans the preceding comma and whitespace.
		m := Span{Key: key, KeyStart: len(data) - len(bytes.TrimLeft(data[before:], ", \t\r\n")), KeyEnd: int(dec.InputOffset())}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return 0, 0, nil, noEOF(err)
		}
		m.ValueEnd = int(dec.InputOffset())
		m.ValueStart = m.ValueEnd - len(raw)
		members = append(members, m)
	}
	// More has ruled out everything but the closing brace or an error.
	if _, err := dec.Token(); err != nil {
		return 0, 0, nil, noEOF(err)
	}
	close = int(dec.InputOffset()) - 1
	if _, err := dec.Token(); err != io.EOF {
		return 0, 0, nil, errors.New("trailing data after the object")
	}
	return open, close, members, nil
}

// noEOF turns a bare io.EOF, which reads as success to most callers, into
// the truncation it is here.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (o *Object) index(key string) int {
	return slices.IndexFunc(o.members, func(m member) bool { return m.key == key })
}

// Get returns the raw value of key.
func (o *Object) Get(key string) (json.RawMessage, bool) {
	if i := o.index(key); i >= 0 {
		return o.members[i].raw, true
	}
	return nil, false
}

// Set replaces the value of key in place, or appends key if it is absent.
// v must be valid JSON; it is written out verbatim.
func (o *Object) Set(key string, v json.RawMessage) {
	if i := o.index(key); i >= 0 {
		o.members[i].raw = v
		return
	}
	k, _ := json.Marshal(key) // cannot fail for a string
	o.members = append(o.members, member{key: key, rawKey: string(k), raw: v})
}

// Delete removes key if present.
func (o *Object) Delete(key string) {
	if i := o.index(key); i >= 0 {
		o.members = slices.Delete(o.members, i, i+1)
	}
}

// MarshalJSON writes the members in order with their raw bytes untouched.
func (o *Object) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, m := range o.members {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(append(append(b, m.rawKey...), ':'), m.raw...)
	}
	return append(b, '}'), nil
}

// SetPath sets the member at path (e.g. "linux", "seccomp") to v, creating
// intermediate objects as needed (a null counts as absent), leaving every
// other member byte-for-byte. v == nil deletes the member.
//
// A key that differs from a path element only in case is refused: runc
// decodes with encoding/json, which matches struct fields case-insensitively,
// so a "Linux" member would override or merge into the "linux" we patched.
func SetPath(doc []byte, v json.RawMessage, path ...string) ([]byte, error) {
	if len(path) == 0 {
		return nil, errors.New("specfile: empty path")
	}
	for _, k := range path {
		// Keys parsed from JSON are always valid UTF-8, so an invalid key
		// could never be found again, and each run would append another.
		if !utf8.ValidString(k) {
			return nil, fmt.Errorf("specfile: path element %q is not valid UTF-8", k)
		}
	}
	if v != nil && !json.Valid(v) {
		return nil, fmt.Errorf("specfile: %s: value is not valid JSON", where(path))
	}
	return setPath(doc, v, path, 0)
}

func setPath(doc []byte, v json.RawMessage, path []string, depth int) ([]byte, error) {
	o, err := parseObject(doc)
	if err != nil {
		return nil, fmt.Errorf("specfile: %s: %w", where(path[:depth]), err)
	}
	key := path[depth]
	for _, m := range o.members {
		if m.key != key && strings.EqualFold(m.key, key) {
			return nil, fmt.Errorf("specfile: %s: member %q would also be decoded as %q", where(path[:depth]), m.key, key)
		}
	}
	if depth == len(path)-1 {
		if v == nil {
			o.Delete(key)
		} else {
			o.Set(key, v)
		}
		return o.MarshalJSON()
	}
	child, ok := o.Get(key)
	if !ok || string(child) == "null" {
		if v == nil {
			return o.MarshalJSON()
		}
		child = json.RawMessage("{}")
	}
	if child, err = setPath(child, v, path, depth+1); err != nil {
		return nil, err
	}
	o.Set(key, child)
	return o.MarshalJSON()
}

// where names an object by its path; keys are quoted because annotation
// keys contain dots.
func where(path []string) string {
	if len(path) == 0 {
		return "top level"
	}
	q := make([]string, len(path))
	for i, k := range path {
		q[i] = fmt.Sprintf("%q", k)
	}
	return strings.Join(q, ".")
}

// Format lays patched out the way original was: indented like `runc spec`
// output (same indent unit) if original's opening brace ends its line,
// compact otherwise, with a final newline iff original had one. Because the
// layout is fully determined by original's first two lines and last byte,
// and a re-indented document reproduces those, Format is idempotent over
// repeated patching. patched must be valid JSON; otherwise it is returned
// unchanged.
func Format(original, patched []byte) []byte {
	var buf bytes.Buffer
	var err error
	if unit, ok := indentUnit(original); ok {
		err = json.Indent(&buf, patched, "", unit)
	} else {
		err = json.Compact(&buf, patched)
	}
	if err != nil {
		return patched
	}
	if bytes.HasSuffix(original, []byte("\n")) {
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

func indentUnit(doc []byte) (string, bool) {
	rest := bytes.TrimLeft(doc, " \t\r\n")
	if len(rest) < 2 || (rest[1] != '\n' && rest[1] != '\r') {
		return "", false
	}
	_, line2, _ := bytes.Cut(rest, []byte("\n"))
	if unit := line2[:len(line2)-len(bytes.TrimLeft(line2, " \t"))]; len(unit) > 0 {
		return string(unit), true
	}
	return "\t", true
}
