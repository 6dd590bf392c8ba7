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

// CompareVersions orders two tags as semantic versions (semver.org 2.0): MAJOR.MINOR.PATCH
// after an optional leading "v", numbers without leading zeros, a -prerelease before its
// release (1.0.0-rc.1 < 1.0.0), +build ignored. ok is false when either does not read as
// one: "v1.2" (two numbers) is not a version, so it is neither older nor newer than
// anything and a target's newest tag falls back to commit time for it. This is the one
// reading of versions: the delivery's "older than live" and the workers' newest tag both
// use it.
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
	var hasPre bool
	s, v.pre, hasPre = strings.Cut(s, "-")
	if hasPre && !validPre(v.pre) {
		return v, false
	}
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

// IsVersion reports whether tag reads as a semantic version (see CompareVersions).
func IsVersion(tag string) bool {
	_, ok := parseVersion(tag)
	return ok
}

// validPre checks a pre-release as semver.org gives it: dot-separated identifiers, none
// empty, of [0-9A-Za-z-], a numeric one without leading zeros. "1.0.0-" is no version
// (read as a release it would equal 1.0.0).
func validPre(pre string) bool {
	for _, id := range strings.Split(pre, ".") {
		if id == "" || strings.Trim(id, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-") != "" {
			return false
		}
		if strings.Trim(id, "0123456789") == "" && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
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
