package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelpListsCommands: --help, -h and help all print the commands (not only serve's
// flags) and succeed.
func TestHelpListsCommands(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"-help"}} {
		var out, errOut bytes.Buffer
		if code := Run(args, &out, &errOut); code != 0 {
			t.Errorf("hookgate %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut.String())
		}
		for _, cmd := range []string{"hookgate check", "hookgate send", "hookgate rollback", "hookgate pin", "hookgate unpin", "hookgate db copy"} {
			if !strings.Contains(out.String(), cmd) {
				t.Errorf("hookgate %s does not list %q:\n%s", strings.Join(args, " "), cmd, out.String())
			}
		}
	}
}

func TestPlural(t *testing.T) {
	for _, tc := range []struct {
		n          int
		noun, want string
	}{
		{0, "problem", "0 problems"}, {1, "problem", "1 problem"}, {2, "command", "2 commands"},
		{1, "repository", "1 repository"}, {3, "repository", "3 repositories"},
	} {
		if got := plural(tc.n, tc.noun); got != tc.want {
			t.Errorf("plural(%d, %q) = %q, want %q", tc.n, tc.noun, got, tc.want)
		}
	}
}
