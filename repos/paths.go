// This file owns what a tag or paths target adds to a deploy: the paths matcher, the
// tag a deploy goes to, and the reason of a skip.
package repos

import (
	"path"
	"strings"
)

// matchPath reports whether name (a slash-separated path in the repository, no leading
// slash) matches pattern: path.Match per segment, plus "**" as a whole segment matching
// any number of segments, none included ("docs/**/*.md" matches docs/a.md and
// docs/x/y/a.md; "services/api/**" everything below services/api). A pattern without a
// slash is matched against the whole path, as git's pathspecs are not: "go.mod" is the
// root's go.mod only. A malformed pattern matches nothing (config checks them first).
func matchPath(pattern, name string) bool {
	return matchSegments(strings.Split(pattern, "/"), strings.Split(name, "/"))
}

func matchSegments(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			// Collapse runs of ** (a/**/**/b is a/**/b), then try every split.
			for len(pat) > 1 && pat[1] == "**" {
				pat = pat[1:]
			}
			if len(pat) == 1 {
				return len(name) > 0 // a trailing ** matches anything below, at any depth
			}
			for i := 0; i <= len(name); i++ {
				if matchSegments(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		ok, err := path.Match(pat[0], name[0])
		if err != nil || !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// matchAny reports whether name matches one of patterns.
func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if matchPath(p, name) {
			return true
		}
	}
	return false
}

// tagOf is the tag a ref names ("" for any other ref).
func tagOf(ref string) string {
	t, _ := strings.CutPrefix(ref, "refs/tags/")
	if t == ref {
		return ""
	}
	return t
}
