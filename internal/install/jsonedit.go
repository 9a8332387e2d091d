package install

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/seccomp-shim/seccomp-shim/internal/specfile"
)

// The JSON edits work on the text, not on a decoded document: re-encoding
// daemon.json would reorder or reformat what its owner wrote, and then
// uninstall could not give the file back byte for byte.

// jsonMember locates one member of an object in the document's bytes.
type jsonMember struct {
	key                  string
	start                int // first byte of the key's opening quote
	valueStart, valueEnd int
}

// jsonObject locates an object: its braces and its members, in order.
type jsonObject struct {
	open, close int
	members     []jsonMember
}

func (o *jsonObject) find(key string) (int, bool) {
	for i, m := range o.members {
		if m.key == key {
			return i, true
		}
	}
	return -1, false
}

// parseJSONObject locates the object that is exactly doc[start:end], with
// specfile's scanner.
func parseJSONObject(doc []byte, start, end int) (*jsonObject, error) {
	open, close, spans, err := specfile.Scan(doc[start:end])
	if err != nil {
		return nil, err
	}
	o := &jsonObject{open: start + open, close: start + close, members: make([]jsonMember, len(spans))}
	for i, m := range spans {
		o.members[i] = jsonMember{key: m.Key, start: start + m.KeyStart, valueStart: start + m.ValueStart, valueEnd: start + m.ValueEnd}
	}
	return o, nil
}

// parseJSONDocument locates the top-level object of doc, which must be the
// whole document apart from surrounding whitespace.
func parseJSONDocument(doc []byte) (*jsonObject, error) {
	return parseJSONObject(doc, 0, len(doc))
}

// child locates the object that is the value of member i.
func (o *jsonObject) child(doc []byte, i int) (*jsonObject, error) {
	m := o.members[i]
	c, err := parseJSONObject(doc, m.valueStart, m.valueEnd)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", m.key, err)
	}
	return c, nil
}

// layout is how an object's members are laid out, so that an inserted member
// looks like its siblings.
type layout struct {
	multiline bool
	indent    string // of the object's members
	unit      string // one level of indentation
	base      string // of the line the object opens on
}

func lineIndent(doc []byte, at int) string {
	ls := bytes.LastIndexByte(doc[:at], '\n') + 1
	line := doc[ls:at]
	return string(line[:len(line)-len(bytes.TrimLeft(line, " \t"))])
}

// guessUnit finds the document's indentation unit from its first indented
// line; two spaces, dockerd's documentation style, if it has none.
func guessUnit(doc []byte) string {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if ind := line[:len(line)-len(bytes.TrimLeft(line, " \t"))]; len(ind) > 0 && len(bytes.TrimSpace(line)) > 0 {
			return string(ind)
		}
	}
	return "  "
}

func (o *jsonObject) layout(doc []byte) layout {
	l := layout{base: lineIndent(doc, o.open)}
	if len(o.members) == 0 {
		l.multiline = true
		l.unit = guessUnit(doc)
		l.indent = l.base + l.unit
		return l
	}
	first := o.members[0].start
	l.multiline = bytes.ContainsRune(doc[o.open:first], '\n')
	if l.multiline {
		l.indent = lineIndent(doc, first)
		l.unit = guessUnit(doc)
		if u, ok := strings.CutPrefix(l.indent, l.base); ok && u != "" {
			l.unit = u
		}
	}
	return l
}

// kv is a member of an object install writes; value is a string or []kv.
type kv struct {
	key   string
	value any
}

// render writes v, a string or []kv, as the value of a member at l.indent,
// in l's style.
func (l layout) render(v any) string {
	if s, ok := v.(string); ok {
		b, _ := json.Marshal(s)
		return string(b)
	}
	members := v.([]kv)
	inner := l
	inner.indent = l.indent + l.unit
	var b strings.Builder
	b.WriteByte('{')
	for i, m := range members {
		if l.multiline {
			b.WriteString("\n" + inner.indent)
		} else if i > 0 {
			b.WriteString(" ")
		}
		k, _ := json.Marshal(m.key)
		b.Write(k)
		b.WriteString(": ")
		b.WriteString(inner.render(m.value))
		if i < len(members)-1 {
			b.WriteByte(',')
		}
	}
	if l.multiline {
		b.WriteString("\n" + l.indent)
	}
	b.WriteByte('}')
	return b.String()
}

// insertMember adds key: value (a string or []kv) as o's last member, laid
// out like its siblings. The text is chosen so that removeMember cuts out
// exactly the inserted bytes again.
func insertMember(doc []byte, o *jsonObject, key string, value any) []byte {
	l := o.layout(doc)
	k, _ := json.Marshal(key)
	v := l.render(value)
	if len(o.members) == 0 {
		text := "\n" + l.indent + string(k) + ": " + v + "\n" + l.base
		return splice(doc, o.open+1, o.close, text)
	}
	sep := " "
	if l.multiline {
		sep = "\n" + l.indent
	}
	last := o.members[len(o.members)-1]
	return splice(doc, last.valueEnd, last.valueEnd, ","+sep+string(k)+": "+v)
}

// removeMember removes member i with the separator that insertMember put
// before it; the only member leaves "{}".
func removeMember(doc []byte, o *jsonObject, i int) []byte {
	switch {
	case len(o.members) == 1:
		return splice(doc, o.open+1, o.close, "")
	case i > 0:
		return splice(doc, o.members[i-1].valueEnd, o.members[i].valueEnd, "")
	default:
		return splice(doc, o.members[0].start, o.members[1].start, "")
	}
}

func splice(doc []byte, from, to int, text string) []byte {
	out := make([]byte, 0, len(doc)-(to-from)+len(text))
	out = append(out, doc[:from]...)
	out = append(out, text...)
	return append(out, doc[to:]...)
}

// jsonValueEqual compares two JSON texts by what they decode to.
func jsonValueEqual(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}
