// This file owns choosing a tag target's tag: semantic versions, and origin's newest
// matching tag.
package repos

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/hookgate/hookgate/repos/checkout"
)

// semver is a tag read as a semantic version (semver.org 2.0; a leading v allowed).
type semver struct {
	num [3]uint64
	pre []string // dot-separated pre-release identifiers; none for a release
}

// parseSemver reads tag as MAJOR.MINOR.PATCH[-PRE][+BUILD] after an optional v.
func parseSemver(tag string) (semver, bool) {
	s := strings.TrimPrefix(tag, "v")
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i]
	}
	var v semver
	core, pre, hasPre := strings.Cut(s, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return v, false
	}
	for i, p := range parts {
		if p == "" || len(p) > 1 && p[0] == '0' {
			return v, false
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return v, false
		}
		v.num[i] = n
	}
	if hasPre {
		v.pre = strings.Split(pre, ".")
		for _, id := range v.pre {
			if id == "" {
				return v, false
			}
		}
	}
	return v, true
}

// compareSemver orders two versions as semver.org says: numbers first, then a
// pre-release below its release, pre-release identifiers compared one by one (numbers
// numerically and below words).
func compareSemver(a, b semver) int {
	for i := range a.num {
		if c := cmpUint(a.num[i], b.num[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(a.pre) == 0 && len(b.pre) == 0:
		return 0
	case len(a.pre) == 0:
		return 1
	case len(b.pre) == 0:
		return -1
	}
	for i := 0; i < len(a.pre) && i < len(b.pre); i++ {
		x, y := a.pre[i], b.pre[i]
		nx, ex := strconv.ParseUint(x, 10, 64)
		ny, ey := strconv.ParseUint(y, 10, 64)
		var c int
		switch {
		case ex == nil && ey == nil:
			c = cmpUint(nx, ny)
		case ex == nil:
			c = -1
		case ey == nil:
			c = 1
		default:
			c = strings.Compare(x, y)
		}
		if c != 0 {
			return c
		}
	}
	return cmpUint(uint64(len(a.pre)), uint64(len(b.pre)))
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// newestPushed is the tag a deploy of tag goes to when the pushes of refs (newest first)
// joined it: the highest semantic version among those that match glob, when all of them
// are versions; else the newest push's tag. A deploy is queued once and joined by every
// push until it runs, as a branch's; its own ref is the first push's.
func newestPushed(tag string, refs []string, glob string) string {
	cands := []string{tag}
	for _, ref := range refs {
		if t := tagOf(ref); t != "" && t != tag {
			if ok, _ := path.Match(glob, t); ok {
				cands = append(cands, t)
			}
		}
	}
	if len(cands) == 1 {
		return tag
	}
	best, bestV := "", semver{}
	for _, t := range cands {
		v, ok := parseSemver(t)
		if !ok {
			// Not all versions: the newest push's tag, as for a branch the newest push's head.
			for _, ref := range refs {
				if t := tagOf(ref); t != "" && slices.Contains(cands, t) {
					return t
				}
			}
			return tag
		}
		if best == "" || compareSemver(v, bestV) > 0 {
			best, bestV = t, v
		}
	}
	return best
}

// newestTag is origin's newest tag matching r.Tags: the highest semantic version when
// any matching tag reads as one; otherwise the tag whose commit is the newest (which
// needs the commits, see checkout.TagTimes), ties broken by name.
func newestTag(ctx context.Context, r Repo) (checkout.TagRef, error) {
	tags, err := checkout.OriginTags(ctx, r.Spec, r.Tags)
	if err != nil {
		return checkout.TagRef{}, err
	}
	if len(tags) == 0 {
		return checkout.TagRef{}, fmt.Errorf("origin has no tag matching %q", r.Tags)
	}
	return pickNewest(tags, func(tags []checkout.TagRef) (map[string]int64, error) {
		times, err := checkout.TagTimes(ctx, r.Spec, tags)
		if err != nil {
			return nil, err
		}
		unix := make(map[string]int64, len(times))
		for k, t := range times {
			unix[k] = t.Unix()
		}
		return unix, nil
	})
}

// pickNewest is newestTag's choice among tags; times is asked only when no tag is a
// semantic version.
func pickNewest(tags []checkout.TagRef, times func([]checkout.TagRef) (map[string]int64, error)) (checkout.TagRef, error) {
	var best checkout.TagRef
	var bestV semver
	found := false
	for _, t := range tags {
		v, ok := parseSemver(t.Name)
		if !ok {
			continue
		}
		if c := compareSemver(v, bestV); !found || c > 0 || c == 0 && t.Name > best.Name {
			best, bestV, found = t, v, true
		}
	}
	if found {
		return best, nil
	}
	when, err := times(tags)
	if err != nil {
		return checkout.TagRef{}, err
	}
	return slices.MaxFunc(tags, func(a, b checkout.TagRef) int {
		if c := cmpUint(uint64(when[a.Name]), uint64(when[b.Name])); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	}), nil
}
