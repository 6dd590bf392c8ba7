package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/hookgate/hookgate/store"
)

// maxShownPayload bounds the payload text a delivery page shows; the raw payload link
// serves the rest.
const maxShownPayload = 256 << 10

// showPayload returns the payload as the delivery page shows it: indented when it is JSON,
// as stored otherwise, cut to at most max bytes (truncated then says so). Indenting costs
// the square of the nesting depth in output (each level indents every line below it): a
// 60 KB payload of nested arrays indents to 200 MB. So the indentation is written here,
// streaming into a buffer that stops at max: time and memory stay linear in the payload
// plus max, whatever its shape.
func showPayload(payload []byte, max int) (text string, truncated bool) {
	if len(payload) == 0 {
		return "", false
	}
	var buf bytes.Buffer
	if json.Valid(payload) {
		truncated = indentJSON(&buf, payload, max)
	} else {
		truncated = len(payload) > max
		buf.Write(payload[:min(len(payload), max)])
	}
	b := buf.Bytes()
	if truncated {
		// Do not end the text in the middle of a character.
		for n := 0; n < utf8.UTFMax && len(b) > 0 && !utf8.Valid(b); n++ {
			b = b[:len(b)-1]
		}
	}
	return string(b), truncated
}

// indentJSON writes src, which must be valid JSON, with two spaces per level of nesting
// (what json.Indent writes, empty arrays and objects kept on one line), stopping once dst
// holds max bytes. It reports whether it stopped before the end.
func indentJSON(dst *bytes.Buffer, src []byte, max int) bool {
	depth := 0
	inString, escaped := false, false
	open := false // after [ or {: the newline waits, in case the value is empty
	newline := func() {
		dst.WriteByte('\n')
		for i := 0; i < depth && dst.Len() < max; i++ {
			dst.WriteString("  ")
		}
	}
	for i, c := range src {
		if dst.Len() >= max {
			if dst.Len() == max && len(bytes.TrimSpace(src[i:])) == 0 {
				return false
			}
			dst.Truncate(max)
			return true
		}
		if inString {
			dst.WriteByte(c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		if open && c != ']' && c != '}' {
			open = false
			newline()
		}
		switch c {
		case '"':
			inString = true
			dst.WriteByte(c)
		case '[', '{':
			dst.WriteByte(c)
			depth++
			open = true
		case ']', '}':
			depth--
			if open {
				open = false
			} else {
				newline()
			}
			dst.WriteByte(c)
		case ',':
			dst.WriteByte(c)
			newline()
		case ':':
			dst.WriteString(": ")
		default:
			dst.WriteByte(c)
		}
	}
	if dst.Len() > max {
		dst.Truncate(max)
		return true
	}
	return false
}

// writePayload answers with d's stored payload, byte for byte. It is the JSON document the
// forge sent: the body itself for application/json, the payload field of a form-encoded
// delivery. So its type is plain application/json whatever the delivery's Content-Type
// was: no parameter the sender chose (charset=utf-7, which old browsers decoded into
// markup) reaches the answer; with nosniff and a sandboxing CSP no browser runs it as a
// page.
func writePayload(c *gin.Context, d store.Delivery) {
	const ctype = "application/json"
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Content-Disposition", fmt.Sprintf(`inline; filename="delivery-%d-payload.json"`, d.ID))
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(d.Payload)))
	c.Data(http.StatusOK, ctype, d.Payload)
}
