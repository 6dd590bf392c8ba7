package reporter

import (
	"testing"
	"time"
)

// TestJudge: what a commit's checks mean for require_checks: every named check green
// passes; one red fails naming it; a missing or running one waits; "*" takes every check
// reported but hookgate's own contexts (per node too); a name both a status and a check
// run is red if either is.
func TestJudge(t *testing.T) {
	own := []string{"hookgate/site", "deploy/api"}
	for _, tc := range []struct {
		name     string
		required []string
		checks   []Check
		verdict  string
		waiting  string
	}{
		{"all green", []string{"ci/build", "test"}, []Check{{Name: "ci/build", State: "success"}, {Name: "test", State: "success", CheckRun: true}}, "green", ""},
		{"one missing", []string{"ci/build", "test"}, []Check{{Name: "ci/build", State: "success"}}, "", "checks: test (not reported yet)"},
		{"one running", []string{"ci/build", "test"}, []Check{{Name: "ci/build", State: "pending"}, {Name: "test", State: "success"}}, "", "checks: ci/build (pending)"},
		{"one red", []string{"ci/build", "test"}, []Check{{Name: "ci/build", State: "pending"}, {Name: "test", State: "failure"}}, "check test failed", ""},
		{"gitlab failed", []string{"build"}, []Check{{Name: "build", State: "failed"}}, "check build failed", ""},
		{"neutral and skipped runs are green", []string{"lint", "docs"}, []Check{{Name: "lint", State: "neutral", CheckRun: true}, {Name: "docs", State: "skipped", CheckRun: true}}, "green", ""},
		{"red run beside a green status", []string{"ci"}, []Check{{Name: "ci", State: "success"}, {Name: "ci", State: "timed_out", CheckRun: true}}, "check ci failed", ""},
		{"star ignores hookgate's own", []string{"*"}, []Check{{Name: "ci", State: "success"}, {Name: "hookgate/site@web1", State: "failure"}, {Name: "deploy/api", State: "pending"}}, "green", ""},
		{"star waits for a running one", []string{"*"}, []Check{{Name: "ci", State: "success"}, {Name: "e2e", State: "queued", CheckRun: true}}, "", "checks: e2e (queued)"},
		{"star with nothing reported", []string{"*"}, []Check{{Name: "hookgate/site", State: "pending"}}, "", "checks: none reported yet"},
		{"a required name that is hookgate's own is not taken from it", []string{"hookgate/site"}, []Check{{Name: "hookgate/site", State: "success"}}, "", "checks: hookgate/site (not reported yet)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, w := judge(tc.required, tc.checks, own)
			if v != tc.verdict || w != tc.waiting {
				t.Fatalf("judge = %q, %q; want %q, %q", v, w, tc.verdict, tc.waiting)
			}
		})
	}
}

// TestCheckBackoff: looks at pending checks back off from First, doubling, to Max.
func TestCheckBackoff(t *testing.T) {
	c := &Checker{opts: CheckOptions{First: 10 * time.Second, Max: 60 * time.Second}}
	var got []time.Duration
	for polls := range 5 {
		got = append(got, c.backoff(polls))
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 60 * time.Second, 60 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backoff %v, want %v", got, want)
		}
	}
	if s := spell(30 * time.Minute); s != "30m" {
		t.Errorf("spell(30m) = %q", s)
	}
	if s := spell(90 * time.Minute); s != "1h30m" {
		t.Errorf("spell(90m) = %q", s)
	}
}
