// This file owns choosing a tag target's tag: the newest of the pushes that joined a
// deploy, and origin's newest matching tag. Versions are read by policy.CompareVersions,
// the same reading as a delivery's "older than live".
package repos

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/hookgate/hookgate/policy"
	"github.com/hookgate/hookgate/repos/checkout"
)

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
	best := ""
	for _, t := range cands {
		if !policy.IsVersion(t) {
			// Not all versions: the newest push's tag, as for a branch the newest push's head.
			for _, ref := range refs {
				if t := tagOf(ref); t != "" && slices.Contains(cands, t) {
					return t
				}
			}
			return tag
		}
		if c, _ := policy.CompareVersions(t, best); best == "" || c > 0 {
			best = t
		}
	}
	return best
}

// ErrNoMatchingTag is NewestTag's answer when origin has no tag matching the target's glob.
var ErrNoMatchingTag = errors.New("origin has no tag matching")

// NewestTag is origin's newest tag matching r.Tags, as a reconcile or a manual deploy of
// the tag target r finds it (newestTag); ErrNoMatchingTag when none matches.
func NewestTag(ctx context.Context, r Repo) (checkout.TagRef, error) {
	return newestTag(ctx, r)
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
		return checkout.TagRef{}, fmt.Errorf("%w %q", ErrNoMatchingTag, r.Tags)
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
	found := false
	for _, t := range tags {
		if !policy.IsVersion(t.Name) {
			continue
		}
		if c, _ := policy.CompareVersions(t.Name, best.Name); !found || c > 0 || c == 0 && t.Name > best.Name {
			best, found = t, true
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
		if c := cmp.Compare(when[a.Name], when[b.Name]); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	}), nil
}
