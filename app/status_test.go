package app

import (
	"testing"

	"github.com/hookgate/hookgate/store"
)

// TestLiveRules pins the three readings of "live" that the API, rollback/pin and the
// page use today, so that making them one is a deliberate change.
func TestLiveRules(t *testing.T) {
	ok := func(c string) *store.Deploy { return &store.Deploy{ToCommit: c} }
	cases := []struct {
		name        string
		lastOK      *store.Deploy
		head        string
		origin      string
		live        string // liveOf: the API's live_commit
		liveOrHead  string // rollback and pin
		originAhead string // the page
	}{
		{"nothing deployed", nil, "hhh", "ooo", "", "hhh", "ooo"},
		{"nothing deployed, origin at head", nil, "hhh", "hhh", "", "hhh", ""},
		{"deployed", ok("ddd"), "hhh", "ddd", "ddd", "ddd", ""},
		{"deployed, origin ahead", ok("ddd"), "hhh", "ooo", "ddd", "ddd", "ooo"},
		{"succeeded without a commit", ok(""), "hhh", "hhh", "", "hhh", "hhh"},
		{"origin unknown", ok("ddd"), "hhh", "", "ddd", "ddd", ""},
	}
	for _, c := range cases {
		st := store.RepoState{LastOK: c.lastOK}
		if got := liveOf(st); got != c.live {
			t.Errorf("%s: liveOf = %q, want %q", c.name, got, c.live)
		}
		if got := liveOrHead(st, func() string { return c.head }); got != c.liveOrHead {
			t.Errorf("%s: liveOrHead = %q, want %q", c.name, got, c.liveOrHead)
		}
		if got := originAhead(st, c.head, OriginState{Commit: c.origin}); got != c.originAhead {
			t.Errorf("%s: originAhead = %q, want %q", c.name, got, c.originAhead)
		}
	}
}

// TestLiveOrHeadReadsHeadOnlyWhenNeeded: rollback and pin open the checkout only when no
// succeeded deploy names a commit.
func TestLiveOrHeadReadsHeadOnlyWhenNeeded(t *testing.T) {
	read := false
	liveOrHead(store.RepoState{LastOK: &store.Deploy{ToCommit: "ddd"}}, func() string { read = true; return "" })
	if read {
		t.Error("HEAD was read although a succeeded deploy names the live commit")
	}
}
