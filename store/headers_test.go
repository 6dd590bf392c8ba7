package store

import (
	"encoding/json"
	"testing"
)

func TestMarshalHeadersMatchesEncodingJSON(t *testing.T) {
	for _, h := range []map[string]string{
		nil,
		{},
		{"X-GitHub-Event": "push"},
		{"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/7b6c1ad",
			"X-GitHub-Delivery": "0b5e1dad-0000-4000-8000-000000000001", "Accept": "*/*"},
		{"B": "", "A": "", "a": "x", "_": " "},
		{"X-Note": `say "hi"`},
		{"X-Path": `C:\dir`},
		{"X-Html": "<b>&</b>"},
		{"X-Ctl": "a\tb\nc\x00"},
		{"X-Utf8": "héllo wörld", "X-Sep": "\u2028\u2029"},
		{"X-Bad": "\xff\xfe"},
		{"X-Del": "\x7f"},
		{"Ä": "key not ASCII"},
	} {
		want, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		got, err := marshalHeaders(h)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("marshalHeaders(%q) = %s, want %s", h, got, want)
		}
	}
}

func FuzzMarshalHeaders(f *testing.F) {
	f.Add("Content-Type", "application/json", "X-A", "<&>")
	f.Add("k", "\x7f\u2028", "\xff", "\"\\")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		h := map[string]string{k1: v1, k2: v2}
		want, err := json.Marshal(h) // a map of strings always marshals
		if err != nil {
			t.Fatal(err)
		}
		got, err := marshalHeaders(h)
		if err != nil || got != string(want) {
			t.Fatalf("marshalHeaders(%q) = %s, %v; want %s", h, got, err, want)
		}
	})
}
