package forge

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/internal/testkit"
)

// scanCases are payloads on the edges of what scanPush handles itself.
var scanCases = []struct {
	payload string
	fast    bool // scanPush decodes it rather than giving up
}{
	{`{}`, true},
	{` {"ref":"refs/heads/main","after":"` + strings.Repeat("a", 40) + `"} `, true},
	{`{"ref":null,"deleted":null,"repository":null,"pusher":null,"head_commit":null}`, true},
	{`{"head_commit":{"id":"x"},"head_commit":{"message":"m"}}`, true}, // merged, as encoding/json does
	{`{"head_commit":{"id":"x"},"head_commit":null}`, true},
	{`{"ref":"a","ref":"b"}`, true},
	{`{"x":[1,-2.5e+3,0.1,true,false,null,{"a":[]},"\u00e9\n"],"y":{}}`, true},
	{`{"head_commit":{"message":"line 1\nline 2 \u00e9 \ud83d\ude00 caf\u00e9"}}`, true},
	{`{"head_commit":{"message":"café ` + "\xff" + `"}}`, true}, // invalid UTF-8 becomes U+FFFD
	{`{"pusher":{"name":"\"quoted\" \\ back\/slash"}}`, true},
	{`{"Ref":"refs/heads/main"}`, false}, // encoding/json matches keys case-insensitively
	{`{"r\u0065f":"refs/heads/main"}`, false},
	{`{"ref":1}`, false},
	{`{"deleted":"true"}`, false},
	{`{"repository":[]}`, false},
	{`[]`, false},
	{`null`, false},
	{`{"ref":"a"} x`, false},
	{`{"ref":"a",}`, false},
	{`{"x":01}`, false},
	{`{"x":1.}`, false},
	{`{"x":"\x"}`, false},
	{"{\"x\":\"\t\"}", false},
	{`{"x":[1,]}`, false},
	{`{"x":tru}`, false},
	{`{"ref":"a"`, false},
	{``, false},
	{strings.Repeat(`{"x":`, maxScanDepth+1) + `1` + strings.Repeat(`}`, maxScanDepth+1), false},
}

// TestScanPush: scanPush decodes the real payloads and the edge cases above exactly as
// encoding/json does, and gives up where it should.
func TestScanPush(t *testing.T) {
	for _, name := range testkit.ForgePayloads {
		payload := testkit.Payload(t, name)
		if _, ok := scanPush(payload); !ok {
			t.Errorf("%s: scanPush gave up on a real payload", name)
		}
		checkScanPush(t, payload)
	}
	for _, tc := range scanCases {
		if _, ok := scanPush([]byte(tc.payload)); ok != tc.fast {
			t.Errorf("%.60q: scanPush ok = %v, want %v", tc.payload, ok, tc.fast)
		}
		checkScanPush(t, []byte(tc.payload))
	}
}

// FuzzScanPush: whenever scanPush decodes a payload, encoding/json decodes it too, to the
// same Push.
//
//	go test -run '^$' -fuzz '^FuzzScanPush$' -fuzztime 15s ./forge/
func FuzzScanPush(f *testing.F) {
	for _, name := range testkit.ForgePayloads {
		f.Add(testkit.Payload(f, name))
	}
	for _, tc := range scanCases {
		f.Add([]byte(tc.payload))
	}
	f.Fuzz(func(t *testing.T, payload []byte) { checkScanPush(t, payload) })
}

func checkScanPush(t *testing.T, payload []byte) {
	t.Helper()
	got, ok := scanPush(payload)
	if !ok {
		return
	}
	var want Push
	if err := json.Unmarshal(payload, &want); err != nil {
		t.Fatalf("%.80q: scanPush decoded what encoding/json refuses: %v", payload, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%.80q: scanPush gave %+v, encoding/json %+v", payload, got, want)
	}
}

// BenchmarkParsePush decodes GitHub's 7 KB push.json.
//
//	go test -run '^$' -bench ParsePush -count 3 ./forge/
func BenchmarkParsePush(b *testing.B) {
	payload := testkit.Payload(b, "github/push.json")
	b.Run("scan", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			if _, err := ParsePush(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			var p Push
			if err := json.Unmarshal(payload, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
