package repos

import "testing"

func TestMatchPath(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"services/api/**", "services/api/main.go", true},
		{"services/api/**", "services/api/internal/x/y.go", true},
		{"services/api/**", "services/api", false}, // the folder itself is not a file in it
		{"services/api/**", "services/apiv2/main.go", false},
		{"services/api/**", "services/web/main.go", false},
		{"go.mod", "go.mod", true},
		{"go.mod", "services/api/go.mod", false},
		{"go.mod", "go.mod.bak", false},
		{"docs/**/*.md", "docs/a.md", true},
		{"docs/**/*.md", "docs/x/y/a.md", true},
		{"docs/**/*.md", "docs/x/y/a.txt", false},
		{"docs/**/*.md", "other/docs/a.md", false},
		{"**/*.md", "README.md", true},
		{"**/*.md", "a/b/c.md", true},
		{"**", "anything/at/all", true},
		{"*.go", "main.go", true},
		{"*.go", "cmd/main.go", false}, // * stays within a segment
		{"a/**/**/b", "a/b", true},
		{"a/**/b", "a/x/y/b", true},
		{"a/**/b", "a/x/y/c", false},
		{"a/?/c", "a/b/c", true},
		{"a/[bc]/d", "a/c/d", true},
		{"a/[", "a/[", false}, // malformed: matches nothing
	} {
		if got := matchPath(c.pattern, c.name); got != c.want {
			t.Errorf("matchPath(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}
