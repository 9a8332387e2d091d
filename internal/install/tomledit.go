package install

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The one edit install makes to containerd's config.toml, an `imports`
// entry, is made on the text: no TOML library in the module keeps comments
// and layout, and re-encoding would lose the owner's. A scanner that knows
// TOML's strings, comments and brackets is enough to find the top-level keys,
// which is all the edit needs; the result is then decoded and compared with
// the original, so a scanner mistake is an error, never a broken config.

// tomlKey is a top-level key/value pair located in the text.
type tomlKey struct {
	name                 string // dotted, quotes removed
	lineStart            int
	valueStart, valueEnd int // the value, without trailing blanks or comment
	lineEnd              int // after the newline, or len(doc)
}

// tomlTop is the root table of a document: the key/value pairs before the
// first table header.
type tomlTop struct {
	keys     []tomlKey
	headerAt int // offset of the first table header, or len(doc)
}

func (t *tomlTop) find(name string) (tomlKey, bool) {
	for _, k := range t.keys {
		if k.name == name {
			return k, true
		}
	}
	return tomlKey{}, false
}

func scanTOMLTop(doc []byte) (*tomlTop, error) {
	t := &tomlTop{headerAt: len(doc)}
	i := 0
	for i < len(doc) {
		ls := i
		for i < len(doc) && (doc[i] == ' ' || doc[i] == '\t') {
			i++
		}
		if i == len(doc) {
			break
		}
		switch doc[i] {
		case '\n', '\r':
			i++
			continue
		case '#':
			i = skipLine(doc, i)
			continue
		case '[':
			t.headerAt = ls
			return t, nil
		}
		eq := i
		name, err := scanKey(doc, &eq)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineOf(doc, i), err)
		}
		vs := eq
		for vs < len(doc) && (doc[vs] == ' ' || doc[vs] == '\t') {
			vs++
		}
		ve, err := scanValue(doc, vs)
		if err != nil {
			return nil, fmt.Errorf("line %d: key %s: %w", lineOf(doc, i), name, err)
		}
		end := skipLine(doc, ve)
		t.keys = append(t.keys, tomlKey{name: name, lineStart: ls, valueStart: vs, valueEnd: ve, lineEnd: end})
		i = end
	}
	return t, nil
}

func lineOf(doc []byte, at int) int { return bytes.Count(doc[:at], []byte("\n")) + 1 }

func skipLine(doc []byte, i int) int {
	if j := bytes.IndexByte(doc[i:], '\n'); j >= 0 {
		return i + j + 1
	}
	return len(doc)
}

// scanKey reads a (dotted) key up to and including its '='; *i ends after it.
func scanKey(doc []byte, i *int) (string, error) {
	var parts []string
	for {
		for *i < len(doc) && (doc[*i] == ' ' || doc[*i] == '\t') {
			*i++
		}
		if *i == len(doc) {
			return "", errors.New("key without a value")
		}
		switch c := doc[*i]; {
		case c == '"' || c == '\'':
			end, err := scanString(doc, *i)
			if err != nil {
				return "", err
			}
			s := string(doc[*i:end])
			if c == '"' {
				u, err := strconv.Unquote(s)
				if err != nil {
					return "", fmt.Errorf("key %s: %w", s, err)
				}
				s = u
			} else {
				s = s[1 : len(s)-1]
			}
			parts = append(parts, s)
			*i = end
		default:
			j := *i
			for j < len(doc) && isBare(doc[j]) {
				j++
			}
			if j == *i {
				return "", fmt.Errorf("unexpected %q in a key", doc[*i])
			}
			parts = append(parts, string(doc[*i:j]))
			*i = j
		}
		for *i < len(doc) && (doc[*i] == ' ' || doc[*i] == '\t') {
			*i++
		}
		if *i < len(doc) && doc[*i] == '.' {
			*i++
			continue
		}
		if *i < len(doc) && doc[*i] == '=' {
			*i++
			return strings.Join(parts, "."), nil
		}
		return "", errors.New("key without '='")
	}
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// scanString returns the offset after the string starting at doc[i], in any
// of TOML's four forms.
func scanString(doc []byte, i int) (int, error) {
	q := doc[i]
	if bytes.HasPrefix(doc[i:], []byte{q, q, q}) {
		j := i + 3
		for j < len(doc) {
			if q == '"' && doc[j] == '\\' {
				j += 2
				continue
			}
			if bytes.HasPrefix(doc[j:], []byte{q, q, q}) {
				// Up to two quotes may end the content right before the
				// closing three.
				j += 3
				for k := 0; k < 2 && j < len(doc) && doc[j] == q; k++ {
					j++
				}
				return j, nil
			}
			j++
		}
		return 0, errors.New("unterminated multi-line string")
	}
	for j := i + 1; j < len(doc); j++ {
		switch doc[j] {
		case '\\':
			if q == '"' {
				j++
			}
		case q:
			return j + 1, nil
		case '\n':
			return 0, errors.New("unterminated string")
		}
	}
	return 0, errors.New("unterminated string")
}

// scanValue returns the end of the value starting at doc[i]: arrays and
// inline tables may span lines and hold comments; a top-level '#' or newline
// ends it. Trailing blanks are not part of it.
func scanValue(doc []byte, i int) (int, error) {
	depth := 0
	end := i
	for i < len(doc) {
		switch c := doc[i]; c {
		case '"', '\'':
			j, err := scanString(doc, i)
			if err != nil {
				return 0, err
			}
			i, end = j, j
			continue
		case '[', '{':
			depth++
		case ']', '}':
			depth--
			if depth < 0 {
				return 0, fmt.Errorf("unbalanced %q", c)
			}
		case '#':
			if depth == 0 {
				return end, nil
			}
			i = skipLine(doc, i)
			continue
		case '\n', '\r':
			if depth == 0 {
				return end, nil
			}
			i++
			continue
		case ' ', '\t':
			i++
			continue
		}
		i++
		end = i
	}
	if depth != 0 {
		return 0, errors.New("unterminated array or inline table")
	}
	return end, nil
}

// tomlArray locates the elements of the array value doc[start:end].
type tomlArray struct {
	open, close   int
	elems         [][2]int
	trailingComma int // offset of a comma after the last element, or -1
}

func scanTOMLArray(doc []byte, start, end int) (*tomlArray, error) {
	if start >= end || doc[start] != '[' || doc[end-1] != ']' {
		return nil, errors.New("not an array")
	}
	a := &tomlArray{open: start, close: end - 1, trailingComma: -1}
	i := start + 1
	for i < a.close {
		switch doc[i] {
		case ' ', '\t', '\r', '\n':
			i++
			continue
		case '#':
			i = skipLine(doc, i)
			continue
		case ',':
			if len(a.elems) == 0 || a.trailingComma >= 0 {
				return nil, errors.New("unexpected comma")
			}
			a.trailingComma = i
			i++
			continue
		}
		if len(a.elems) > 0 && a.trailingComma < 0 {
			return nil, errors.New("elements without a comma between them")
		}
		ve, err := scanElem(doc, i, a.close)
		if err != nil {
			return nil, err
		}
		a.elems = append(a.elems, [2]int{i, ve})
		a.trailingComma = -1
		i = ve
	}
	return a, nil
}

// scanElem returns the end of the array element at doc[i]: a string, or
// anything else up to the next separator at its level.
func scanElem(doc []byte, i, limit int) (int, error) {
	if doc[i] == '"' || doc[i] == '\'' {
		return scanString(doc, i)
	}
	depth := 0
	j := i
	for j < limit {
		switch doc[j] {
		case '"', '\'':
			k, err := scanString(doc, j)
			if err != nil {
				return 0, err
			}
			j = k
			continue
		case '[', '{':
			depth++
		case ']', '}':
			depth--
		case ',', ' ', '\t', '\r', '\n', '#':
			if depth == 0 {
				return j, nil
			}
		}
		j++
	}
	return j, nil
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
