// This file owns git's path rules (verify_path): what a tree may name in the work tree.
package checkout

import (
	"strings"
)

// validPath applies git's verify_path with core.protectNTFS and core.protectHFS on
// (read-cache.c, path.c, utf8.c): no empty, "." or ".." component (so no leading or
// doubled "/"), no NUL, and no component that is .git or one of its aliases on
// another file system: any case, NTFS's trailing spaces and dots, alternate data
// streams and 8.3 short name git~1, backslash as a separator, HFS+'s ignored
// Unicode code points. A symlink named like .gitmodules is refused too. Checkouts get
// copied to other machines, so the aliases matter on Linux as well.
func validPath(p string, symlink bool) error {
	if p == "" {
		return &unsafePathError{path: p, why: "empty"}
	}
	for start := 0; start <= len(p); {
		end := strings.IndexByte(p[start:], '/')
		if end < 0 {
			end = len(p)
		} else {
			end += start
		}
		c := p[start:end]
		last := end == len(p)
		switch {
		case c == "":
			return &unsafePathError{path: p, why: "empty path component"}
		case c == "." || c == "..":
			return &unsafePathError{path: p, why: "component " + c}
		case strings.IndexByte(c, 0) >= 0:
			return &unsafePathError{path: p, why: "NUL in a name"}
		}
		for part := range strings.SplitSeq(c, `\`) {
			if isDotGit(part) {
				return &unsafePathError{path: p, why: "names .git or an alias of it"}
			}
			if symlink && last && isDotGitmodules(part) {
				return &unsafePathError{path: p, why: "a symlink named like .gitmodules"}
			}
		}
		start = end + 1
	}
	return nil
}

// isDotGit says whether name is .git on any file system git protects: its case
// variants, NTFS's ".git" followed by spaces and dots or a stream (".git::$DATA"),
// its short name "git~1", and HFS+'s ".git" with ignored code points in it.
func isDotGit(name string) bool {
	if len(name) < 4 {
		return false
	}
	return ntfsAlias(name, ".git") || ntfsAlias(name, "git~1") || hasNonASCII(name) && hfsFolded(name) == ".git"
}

// isDotGitmodules is isDotGit for .gitmodules (git refuses it as a symlink): also the
// NTFS short names gitmod~N and gi7eba~N.
func isDotGitmodules(name string) bool {
	if ntfsAlias(name, ".gitmodules") || hasNonASCII(name) && hfsFolded(name) == ".gitmodules" {
		return true
	}
	for _, short := range []string{"gitmod~", "gi7eba~"} {
		if len(name) > len(short) && asciiEqualFold(name[:len(short)], short) &&
			name[len(short)] >= '1' && name[len(short)] <= '9' &&
			onlySpacesAndDots(streamless(name[len(short)+1:])) {
			return true
		}
	}
	return false
}

// ntfsAlias says whether name is want to NTFS: any case, then only spaces and dots,
// then optionally an alternate data stream.
func ntfsAlias(name, want string) bool {
	return len(name) >= len(want) && asciiEqualFold(name[:len(want)], want) &&
		onlySpacesAndDots(streamless(name[len(want):]))
}

func streamless(s string) string {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		return s[:i]
	}
	return s
}

func onlySpacesAndDots(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && s[i] != '.' {
			return false
		}
	}
	return true
}

// hfsFolded drops the code points HFS+ ignores in names and lower-cases ASCII, as
// git's next_hfs_char does; other characters are kept as they are.
func hfsFolded(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 0x200c && r <= 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x206a && r <= 0x206f, r == 0xfeff:
			continue
		case r >= 'A' && r <= 'Z':
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func hasNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// asciiEqualFold is strings.EqualFold for ASCII letters only, as git compares: the
// Kelvin sign is not a k.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
