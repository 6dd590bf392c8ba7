package checkout

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
)

// TestOriginErrorsNameTheURL: when origin cannot be reached or is not there, the error
// names the URL the operator configured (credentials scrubbed), not only the checkout.
func TestOriginErrorsNameTheURL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	missing := filepath.Join(t.TempDir(), "no-such-origin.git")
	for _, tc := range []struct{ url, want string }{
		{missing, missing},
		{"https://deploy:t0ken-in-url@127.0.0.1:1/acme/nope.git", "127.0.0.1:1/acme/nope.git"},
	} {
		s := Spec{Name: "site", Path: filepath.Join(t.TempDir(), "site"), Branch: "main", URL: tc.url, Token: "t0ken-field"}
		_, err := Update(ctx, s)
		if err == nil {
			t.Fatalf("clone of %s succeeded", tc.url)
		}
		if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "t0ken") {
			t.Errorf("clone of %s: %q; want it to name %s without credentials", tc.url, err, tc.want)
		}
	}

	// A checkout whose origin went away: the fetch's error names origin's URL.
	o := testkit.NewOrigin(t)
	path := o.Clone()
	gone := filepath.Join(t.TempDir(), "moved-away.git")
	testkit.Git(t, path, "remote", "set-url", "origin", gone)
	_, err := Update(ctx, Spec{Name: "site", Path: path, Branch: "main"})
	if err == nil || !strings.Contains(err.Error(), gone) {
		t.Fatalf("fetch from a missing origin: %v; want it to name %s", err, gone)
	}
}
