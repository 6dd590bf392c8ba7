// scan.go: the fast path of ParsePush, a one-pass scanner of a push payload.

package forge

import (
	"bytes"
	"encoding/json"
)

// scanPush is ParsePush's fast path: one pass over the payload that checks it is valid JSON
// and picks out the few fields Push has, skipping the rest of a 7 KB push without
// reflection. encoding/json spent two passes on it (json.Valid, then the decode) and was
// the largest cost of a delivery outside the store.
//
// It reports ok only when the result is exactly what json.Unmarshal into a Push would
// give; on anything it does not handle the same way (invalid JSON, a field of the wrong
// type, a key that matches a field only case-insensitively or is escaped, deep nesting)
// it gives up and ParsePush decodes with encoding/json, which also words the error.
// FuzzScanPush holds it to that.
func scanPush(b []byte) (p Push, ok bool) {
	s := pushScanner{b: b}
	s.ws()
	if !s.object(s.pushField(&p)) {
		return Push{}, false
	}
	s.ws()
	return p, s.i == len(s.b)
}

// maxScanDepth bounds nesting; deeper payloads go to encoding/json (its own limit is 10,000).
const maxScanDepth = 200

type pushScanner struct {
	b     []byte
	i     int
	depth int
}

// fieldFunc decodes the value of key, at s.i, and reports false to give up.
type fieldFunc func(key []byte) bool

func (s *pushScanner) pushField(p *Push) fieldFunc {
	return func(key []byte) bool {
		switch string(key) {
		case "ref":
			return s.str(&p.Ref)
		case "before":
			return s.str(&p.Before)
		case "after":
			return s.str(&p.After)
		case "deleted":
			return s.boolean(&p.Deleted)
		case "repository":
			return s.objectOrNull(func(k []byte) bool {
				switch string(k) {
				case "full_name":
					return s.str(&p.Repository.FullName)
				case "html_url":
					return s.str(&p.Repository.HTMLURL)
				}
				return s.other(k, "full_name", "html_url")
			})
		case "pusher":
			return s.objectOrNull(func(k []byte) bool {
				if string(k) == "name" {
					return s.str(&p.Pusher.Name)
				}
				return s.other(k, "name")
			})
		case "head_commit":
			if s.literal("null") {
				p.HeadCommit = nil
				return true
			}
			if p.HeadCommit == nil {
				p.HeadCommit = &Commit{}
			}
			c := p.HeadCommit
			return s.object(func(k []byte) bool {
				switch string(k) {
				case "id":
					return s.str(&c.ID)
				case "message":
					return s.str(&c.Message)
				}
				return s.other(k, "id", "message")
			})
		}
		return s.other(key, "ref", "before", "after", "deleted", "repository", "pusher", "head_commit")
	}
}

// other skips the value of a key that names no field, giving up when encoding/json would
// still match the key to one of fields (it matches case-insensitively).
func (s *pushScanner) other(key []byte, fields ...string) bool {
	for _, f := range fields {
		if bytes.EqualFold(key, []byte(f)) {
			return false
		}
	}
	return s.skip()
}

func (s *pushScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// object reads {"key": value, …}, handing each value to field. Keys with escapes or
// non-ASCII bytes give up: encoding/json unescapes and case-folds them before matching.
func (s *pushScanner) object(field fieldFunc) bool {
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	if empty, ok := s.open('}'); !ok || empty {
		return ok
	}
	for {
		raw, plain, ok := s.rawString()
		if !ok || !plain {
			return false
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		if !field(raw[1 : len(raw)-1]) {
			return false
		}
		if done, ok := s.next('}'); !ok || done {
			return ok
		}
	}
}

// open enters the object or array whose opening byte is at s.i, up to maxScanDepth
// deep; empty says it closed at once.
func (s *pushScanner) open(closing byte) (empty, ok bool) {
	if s.depth >= maxScanDepth {
		return false, false
	}
	s.depth++
	s.i++
	s.ws()
	return s.close(closing), true
}

// close leaves the object or array when its closing byte is next.
func (s *pushScanner) close(closing byte) bool {
	if s.i < len(s.b) && s.b[s.i] == closing {
		s.i++
		s.depth--
		return true
	}
	return false
}

// next moves past what follows an element: the ',' before the next one, or the closing
// byte (done).
func (s *pushScanner) next(closing byte) (done, ok bool) {
	s.ws()
	if s.close(closing) {
		return true, true
	}
	if s.i < len(s.b) && s.b[s.i] == ',' {
		s.i++
		s.ws()
		return false, true
	}
	return false, false
}

// objectOrNull is object, where null leaves the struct as it is (as encoding/json does).
func (s *pushScanner) objectOrNull(field fieldFunc) bool {
	if s.literal("null") {
		return true
	}
	return s.object(field)
}

// str reads a string into dst; null leaves dst as it is. A string with escapes or
// non-ASCII bytes is decoded by encoding/json, so its rules (invalid UTF-8 becomes
// U+FFFD, surrogate pairs) hold exactly.
func (s *pushScanner) str(dst *string) bool {
	if s.literal("null") {
		return true
	}
	raw, plain, ok := s.rawString()
	if !ok {
		return false
	}
	if plain {
		*dst = string(raw[1 : len(raw)-1])
		return true
	}
	return json.Unmarshal(raw, dst) == nil
}

func (s *pushScanner) boolean(dst *bool) bool {
	switch {
	case s.literal("true"):
		*dst = true
	case s.literal("false"):
		*dst = false
	case s.literal("null"):
	default:
		return false
	}
	return true
}

// literal consumes word when it comes next.
func (s *pushScanner) literal(word string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		return false
	}
	s.i += len(word)
	return true
}

// rawString reads a JSON string, quotes included, checking its escapes. plain reports
// that it has no escapes and only ASCII bytes, so its text is the bytes between the quotes.
func (s *pushScanner) rawString() (raw []byte, plain, ok bool) {
	b, i, start := s.b, s.i, s.i
	if i >= len(b) || b[i] != '"' {
		return nil, false, false
	}
	plain = true
	for i++; i < len(b); {
		c := b[i]
		switch {
		case strSafe[c]:
			i++
		case c == '"':
			s.i = i + 1
			return b[start:s.i], plain, true
		case c == '\\':
			plain = false
			if i+1 >= len(b) {
				return nil, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return nil, false, false
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return nil, false, false
					}
				}
				i += 6
			default:
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		default: // non-ASCII
			plain = false
			i++
		}
	}
	return nil, false, false
}

// strSafe marks the bytes a plain string holds as they are: ASCII, neither a control
// character nor '"' nor '\\'.
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// skip passes over one value of any type, checking that it is valid JSON.
func (s *pushScanner) skip() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, _, ok := s.rawString()
		return ok
	case c == '{':
		return s.object(func([]byte) bool { return s.skip() })
	case c == '[':
		return s.array()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	return false
}

func (s *pushScanner) array() bool {
	if empty, ok := s.open(']'); !ok || empty {
		return ok
	}
	for {
		if !s.skip() {
			return false
		}
		if done, ok := s.next(']'); !ok || done {
			return ok
		}
	}
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *pushScanner) number() bool {
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.digits() == 0:
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

func (s *pushScanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}
