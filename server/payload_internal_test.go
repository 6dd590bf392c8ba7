package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hookgate/hookgate/internal/testkit"
)

// TestShowPayloadIndentsLikeJSONIndent: for every real forge payload and a few awkward
// documents, the page's indentation is exactly json.Indent's, and nothing is cut.
func TestShowPayloadIndentsLikeJSONIndent(t *testing.T) {
	docs := map[string][]byte{
		"empty containers": []byte(`{"a":[],"b":{},"c":[{}],"d":[[]]}`),
		"escapes":          []byte(`{"q":"a \"quoted\" \\ [not, a: {list}]","u":"\u00e9 ✓"}`),
		"escaped quotes":   []byte(`{"q":"say \"[1,{\"k\":2}]\" ok","b":"\\","c":[1]}`),
		"spaced":           []byte(" [ 1 ,\n\t2 , { \"k\" : null } ] "),
		"scalar":           []byte(`"just a string"`),
		"nested":           []byte(strings.Repeat("[", 50) + strings.Repeat("]", 50)),
	}
	for _, name := range testkit.ForgePayloads {
		docs[name] = testkit.Payload(t, name)
	}
	for name, doc := range docs {
		var want bytes.Buffer
		if err := json.Indent(&want, doc, "", "  "); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, truncated := showPayload(doc, 1<<20)
		if truncated || got != strings.TrimSpace(want.String()) {
			t.Errorf("%s: truncated=%v\n got %q\nwant %q", name, truncated, got, want.String())
		}
	}
}

// TestShowPayloadBounded: whatever the payload's shape, the text shown is at most the cap,
// valid UTF-8, and a prefix of the full indentation.
func TestShowPayloadBounded(t *testing.T) {
	const max = 4 << 10
	deep := []byte(strings.Repeat("[", 5000) + strings.Repeat("]", 5000))
	wide := []byte(`["` + strings.Repeat("é", 10000) + `"]`)
	for name, tc := range map[string]struct {
		doc  []byte
		full string // the whole text, of which the shown text is a prefix
	}{
		"deep":        {deep, ""},
		"wide":        {wide, "[\n  \"" + strings.Repeat("é", 10000) + "\"\n]"},
		"not JSON":    {[]byte(strings.Repeat("é", 5000) + "{"), strings.Repeat("é", 5000) + "{"},
		"exactly max": {[]byte(`"` + strings.Repeat("x", max-2) + `"`), `"` + strings.Repeat("x", max-2) + `"`},
	} {
		got, truncated := showPayload(tc.doc, max)
		if len(got) > max || !utf8.ValidString(got) {
			t.Errorf("%s: %d bytes shown (cap %d), valid UTF-8 %v", name, len(got), max, utf8.ValidString(got))
		}
		if tc.full != "" && !strings.HasPrefix(tc.full, got) {
			t.Errorf("%s: shown text is not a prefix of the payload's", name)
		}
		if wantCut := len(tc.full) > max || tc.full == ""; truncated != wantCut {
			t.Errorf("%s: truncated=%v, want %v", name, truncated, wantCut)
		}
	}
}

// FuzzShowPayload: for any input, the shown text is within the cap; for JSON, it is a
// prefix of json.Indent's output (the whole of it when it fits).
func FuzzShowPayload(f *testing.F) {
	for _, name := range testkit.ForgePayloads {
		f.Add(testkit.Payload(f, name), 1<<20)
		f.Add(testkit.Payload(f, name), 300)
	}
	f.Add([]byte(`{"q":"say \"[1,{\"k\":2}]\" ok","b":"\\","c":[[],{}]}`), 20)
	f.Fuzz(func(t *testing.T, doc []byte, max int) {
		if max < 1 || max > 1<<20 {
			return
		}
		got, truncated := showPayload(doc, max)
		if len(got) > max {
			t.Fatalf("%d bytes shown, cap %d", len(got), max)
		}
		if utf8.Valid(doc) && !utf8.ValidString(got) {
			t.Fatalf("cut inside a character: %q", got)
		}
		var want bytes.Buffer
		if json.Indent(&want, doc, "", "  ") != nil {
			return
		}
		full := strings.TrimSpace(want.String())
		if !strings.HasPrefix(full, got) || truncated != (got != full) {
			t.Fatalf("shown %q (truncated %v), json.Indent %q", got, truncated, full)
		}
	})
}
