package scrub

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://user:s3cret@host/x.git", "https://***@host/x.git"},
		{"https://x-access-token:s3cret@host/r.git", "https://***@host/r.git"},
		{"https://s3cret@host/x.git", "https://***@host/x.git"},
		{"https://s3cret:x-oauth-basic@github.com/o/r", "https://***@github.com/o/r"},
		{"HTTP://u:s3cret@host/", "HTTP://***@host/"},
		{`clone "https://u:s3cret@host/x.git": 401`, `clone "https://***@host/x.git": 401`},
		{"ssh://git:s3cret@host/x.git", "ssh://git:***@host/x.git"},
		{"ssh://git@host/x.git", "ssh://git@host/x.git"},
		{"git@host:x.git", "git@host:x.git"},
		{"https://host/x.git", "https://host/x.git"},
		{"/srv/repos/x.git", "/srv/repos/x.git"},
		{"a https://a:s3cret@h/1 and https://b:s3cret@h/2", "a https://***@h/1 and https://***@h/2"},
		{"mailto-like user@host, not a URL", "mailto-like user@host, not a URL"},
	} {
		if got := Text(c.in); got != c.want {
			t.Errorf("Text(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := Text("token s3cret in clear", "s3cret", ""); got != "token *** in clear" {
		t.Errorf("Text with a secret = %q", got)
	}
}

func TestError(t *testing.T) {
	cause := fmt.Errorf("fetch https://x-access-token:s3cr3t@host/r.git: %w", fs.ErrPermission)
	err := Error(cause, "s3cr3t")
	if err.Error() != "fetch https://***@host/r.git: permission denied" {
		t.Errorf("Error = %q", err)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Error("lost errors.Is")
	}
	if errors.Unwrap(err) != nil {
		t.Error("the scrubbed error unwraps to the unscrubbed one")
	}
	plain := errors.New("nothing to hide")
	if Error(plain) != plain || Error(nil) != nil {
		t.Error("Error changed an error with nothing secret in it")
	}
}
