// Package specfile patches an OCI bundle's config.json in place.
//
// Decoding into specs.Spec and re-encoding would silently drop every field
// the vendored runtime-spec does not know, so the document is patched as raw
// JSON instead: the patched member's value is spliced into the text, and
// every other byte of the file stays as it was. The file is replaced
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
//	changed, err := f.WriteAtomic(doc)
package specfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

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
// It is the one order-preserving JSON scanner: SetPath patches config.json
// with it, and seccomp-install edits daemon.json with it, both splicing the
// text so that every byte they don't change stays.
//
// encoding/json validates data in one pass (json.Valid); the members'
// bounds in valid JSON then need only its quotes, escapes and brackets.
// json.Decoder's token API, which found them before, cost a create five
// times that pass, at every scan (docs/benchmarks.md). Invalid data still
// goes through the decoder, whose errors say what is wrong.
func Scan(data []byte) (open, close int, members []Span, err error) {
	if !json.Valid(data) {
		return decoderScan(data)
	}
	return scanValid(data)
}

// scanValid is Scan of data already known to be valid JSON, such as a
// member's value in a document Scan has accepted.
func scanValid(data []byte) (open, close int, members []Span, err error) {
	open = len(data) - len(bytes.TrimLeft(data, " \t\r\n"))
	if data[open] != '{' {
		return 0, 0, nil, errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	i := skipSpace(data, open+1)
	for data[i] != '}' {
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
		m := Span{KeyStart: i, KeyEnd: skipValue(data, i)}
		if err := json.Unmarshal(data[m.KeyStart:m.KeyEnd], &m.Key); err != nil {
			return 0, 0, nil, err
		}
		if seen[m.Key] {
			return 0, 0, nil, fmt.Errorf("duplicate key %q", m.Key)
		}
		seen[m.Key] = true
		m.ValueStart = skipSpace(data, skipSpace(data, m.KeyEnd)+1) // past the colon
		m.ValueEnd = skipValue(data, m.ValueStart)
		members = append(members, m)
		i = skipSpace(data, m.ValueEnd)
	}
	return open, i, members, nil
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n') {
		i++
	}
	return i
}

// skipValue returns the end of the value that starts at data[i], which
// must be valid JSON.
func skipValue(data []byte, i int) int {
	depth := 0
	for ; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of what holds a number, true, false or null
			}
			depth--
		default: // within a number, true, false or null, or between values
			if depth == 0 && (data[i] == ',' || data[i] == ':' || data[i] <= ' ') {
				return i
			}
			continue
		}
		if depth == 0 {
			return i + 1
		}
	}
	return i
}

// decoderScan is Scan through json.Decoder, for invalid data: its errors
// say what is wrong, and where.
func decoderScan(data []byte) (open, close int, members []Span, err error) {
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

// SetPath sets the member at path (e.g. "linux", "seccomp") to v, creating
// intermediate objects as needed (a null counts as absent); v == nil deletes
// the member. Only the bytes of that member change: every other byte of doc
// stays as it was, indentation and all. v is laid out like the document:
// indented with its unit if doc's opening brace ends its line (as `runc
// spec` writes it), compact otherwise; a new member is laid out like its
// siblings. So patching twice with the same v gives the same bytes.
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
	unit, _ := indentUnit(doc)
	return setPath(doc, v, path, 0, "", unit)
}

// CheckPath refuses doc if a member along path has a twin that differs only
// in case, as SetPath does: a spec left as it is must be refused alike, or
// runc (encoding/json, the last of the twins) and crun (the exact key) would
// read different profiles.
func CheckPath(doc []byte, path ...string) error {
	obj := doc
	for depth, key := range path {
		scan := Scan
		if depth > 0 {
			scan = scanValid // a member of the object scanned before
		}
		_, _, spans, err := scan(obj)
		if err != nil {
			return fmt.Errorf("specfile: %s: %w", where(path[:depth]), err)
		}
		next := -1
		for j, m := range spans {
			if m.Key == key {
				next = j
			} else if strings.EqualFold(m.Key, key) {
				return fmt.Errorf("specfile: %s: member %q would also be decoded as %q", where(path[:depth]), m.Key, key)
			}
		}
		if next < 0 {
			return nil
		}
		obj = obj[spans[next].ValueStart:spans[next].ValueEnd]
		if len(obj) == 0 || obj[0] != '{' {
			return nil // null, or not an object: the decoder says what is wrong
		}
	}
	return nil
}

// setPath sets path[depth:] in obj, an object whose opening line is
// indented by base; unit is the document's indentation unit, "" if compact.
func setPath(obj []byte, v json.RawMessage, path []string, depth int, base, unit string) ([]byte, error) {
	scan := Scan
	if depth > 0 {
		scan = scanValid // a member of the object scanned before, or {}
	}
	open, close, spans, err := scan(obj)
	if err != nil {
		return nil, fmt.Errorf("specfile: %s: %w", where(path[:depth]), err)
	}
	key, i := path[depth], -1
	for j, m := range spans {
		if m.Key == key {
			i = j
		} else if strings.EqualFold(m.Key, key) {
			return nil, fmt.Errorf("specfile: %s: member %q would also be decoded as %q", where(path[:depth]), m.Key, key)
		}
	}
	l := layOut(obj, open, spans, base, unit)
	var value []byte
	if depth == len(path)-1 {
		if v == nil {
			if i < 0 {
				return obj, nil
			}
			return removeMember(obj, open, close, spans, i), nil
		}
		value, err = l.value(v, obj, spans, i)
		if err != nil {
			return nil, fmt.Errorf("specfile: %s: value is not valid JSON: %w", where(path), err)
		}
	} else {
		child, childBase := []byte("{}"), l.indent
		if i >= 0 {
			child, childBase = obj[spans[i].ValueStart:spans[i].ValueEnd], lineIndent(obj, spans[i].KeyStart, base)
		}
		if string(child) == "null" {
			child = []byte("{}")
		}
		if string(child) == "{}" && v == nil {
			return obj, nil // nothing to delete under an absent member
		}
		if value, err = setPath(child, v, path, depth+1, childBase, unit); err != nil {
			return nil, err
		}
	}
	if i >= 0 {
		return splice(obj, spans[i].ValueStart, spans[i].ValueEnd, value), nil
	}
	return l.insert(obj, open, close, spans, key, value), nil
}

// layout is how an object's members are laid out, so that a new one looks
// like its siblings.
type layout struct {
	multiline   bool
	base        string // the indentation of the line the object opens on
	indent      string // of the line a new member goes on
	unit        string // "" if the document is compact
	sep, keySep string // before a member after the comma, between key and value
}

func layOut(obj []byte, open int, spans []Span, base, unit string) layout {
	l := layout{base: base, unit: unit, indent: base + unit, multiline: unit != "", keySep: ":"}
	if l.multiline {
		l.keySep = ": "
	}
	if n := len(spans); n > 0 {
		l.multiline = bytes.ContainsAny(obj[open:spans[0].KeyStart], "\r\n")
		l.keySep = string(obj[spans[n-1].KeyEnd:spans[n-1].ValueStart])
		// A new member is indented like the first (multiline), or goes
		// on the line of the last.
		if l.multiline {
			l.indent = lineIndent(obj, spans[0].KeyStart, base)
		} else {
			l.indent = lineIndent(obj, spans[n-1].KeyStart, base)
		}
		if n > 1 {
			// What follows the comma before the last member.
			l.sep = strings.TrimPrefix(strings.TrimLeft(string(obj[spans[n-2].ValueEnd:spans[n-1].KeyStart]), " \t\r\n"), ",")
		} else if l.multiline {
			l.sep = "\n" + l.indent
		}
	}
	return l
}

// value lays v out as the value of member i (a new member if i < 0). Laying
// it out is also what checks that v is valid JSON: one pass over a profile
// of tens of kilobytes, not two.
func (l layout) value(v json.RawMessage, obj []byte, spans []Span, i int) ([]byte, error) {
	var buf bytes.Buffer
	v = bytes.TrimSpace(v)
	if l.unit == "" {
		err := json.Compact(&buf, v)
		return buf.Bytes(), err
	}
	prefix := l.indent
	if i >= 0 {
		prefix = lineIndent(obj, spans[i].KeyStart, l.base)
	}
	err := json.Indent(&buf, v, prefix, l.unit)
	return buf.Bytes(), err
}

// insert adds key: value as the object's last member.
func (l layout) insert(obj []byte, open, close int, spans []Span, key string, value []byte) []byte {
	k, _ := json.Marshal(key) // cannot fail for a string
	if len(spans) == 0 {
		if l.multiline {
			return splice(obj, open+1, close, []byte("\n"+l.indent), k, []byte(l.keySep), value, []byte("\n"+l.base))
		}
		return splice(obj, open+1, close, k, []byte(l.keySep), value)
	}
	end := spans[len(spans)-1].ValueEnd
	return splice(obj, end, end, []byte(","+l.sep), k, []byte(l.keySep), value)
}

// removeMember removes member i with the comma before it (after it, for the
// first); the only member leaves "{}".
func removeMember(obj []byte, open, close int, spans []Span, i int) []byte {
	switch {
	case len(spans) == 1:
		return splice(obj, open+1, close, nil)
	case i > 0:
		return splice(obj, spans[i-1].ValueEnd, spans[i].ValueEnd, nil)
	default:
		return splice(obj, spans[0].KeyStart, spans[1].KeyStart, nil)
	}
}

// splice replaces doc[from:to] with the parts of text, copying each byte
// once: the value is a profile of tens of kilobytes.
func splice(doc []byte, from, to int, text ...[]byte) []byte {
	n := len(doc) - (to - from)
	for _, t := range text {
		n += len(t)
	}
	out := append(make([]byte, 0, n), doc[:from]...)
	for _, t := range text {
		out = append(out, t...)
	}
	return append(out, doc[to:]...)
}

// lineIndent is the indentation of the line obj[at] is on; base if that is
// the line obj starts on.
func lineIndent(obj []byte, at int, base string) string {
	ls := bytes.LastIndexByte(obj[:at], '\n')
	if ls < 0 {
		return base
	}
	line := obj[ls+1 : at]
	return string(line[:len(line)-len(bytes.TrimLeft(line, " \t"))])
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

// indentUnit is the document's indentation unit, if its opening brace ends
// its line (as runc spec, containerd and podman write config.json): the
// indentation of its second line, or a tab.
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
