// semver.go owns the one ordering of tags: as semantic versions, when both read as one.

package policy

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// OlderTag is the reason a push of ref (refs/tags/NAME) is ignored when live
// (refs/tags/NAME, a tag target's live tag) is a newer semantic version: "v1.2.0 is older
// than live v1.3.0". "" when either is not a tag or not a semantic version (no ordering is
// then known), or ref is not older.
func OlderTag(ref, live string) string {
	tag, ok1 := strings.CutPrefix(ref, "refs/tags/")
	cur, ok2 := strings.CutPrefix(live, "refs/tags/")
	if !ok1 || !ok2 {
		return ""
	}
	if c, ok := CompareVersions(tag, cur); ok && c < 0 {
		return fmt.Sprintf("%s is older than live %s", tag, cur)
	}
	return ""
}

// CompareVersions orders two tags as semantic versions (MAJOR.MINOR.PATCH, a leading "v"
// allowed, a -prerelease before its release, +build ignored). ok is false when either
// does not read as one.
func CompareVersions(a, b string) (c int, ok bool) {
	va, oka := parseVersion(a)
	vb, okb := parseVersion(b)
	if !oka || !okb {
		return 0, false
	}
	for i := range 3 {
		if c := cmp.Compare(va.n[i], vb.n[i]); c != 0 {
			return c, true
		}
	}
	switch {
	case va.pre == vb.pre:
		return 0, true
	case va.pre == "":
		return 1, true
	case vb.pre == "":
		return -1, true
	}
	return comparePre(va.pre, vb.pre), true
}

type version struct {
	n   [3]uint64
	pre string
}

func parseVersion(s string) (version, bool) {
	var v version
	s = strings.TrimPrefix(s, "v")
	s, _, _ = strings.Cut(s, "+")
	s, v.pre, _ = strings.Cut(s, "-")
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || (len(p) > 1 && p[0] == '0') {
			return v, false
		}
		v.n[i] = n
	}
	return v, true
}

// comparePre orders prerelease strings by their dot-separated identifiers, numbers
// numerically and below words, as semver.org gives.
func comparePre(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range min(len(as), len(bs)) {
		na, ea := strconv.ParseUint(as[i], 10, 64)
		nb, eb := strconv.ParseUint(bs[i], 10, 64)
		var c int
		switch {
		case ea == nil && eb == nil:
			c = cmp.Compare(na, nb)
		case ea == nil:
			c = -1
		case eb == nil:
			c = 1
		default:
			c = strings.Compare(as[i], bs[i])
		}
		if c != 0 {
			return c
		}
	}
	return cmp.Compare(len(as), len(bs))
}
