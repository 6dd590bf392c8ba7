package repos

import (
	"testing"

	"github.com/hookgate/hookgate/repos/checkout"
)

func TestPickNewestTag(t *testing.T) {
	noTimes := func([]checkout.TagRef) (map[string]int64, error) {
		t.Fatal("commit times asked for although semantic versions match")
		return nil, nil
	}
	for _, c := range []struct {
		tags  []string
		times map[string]int64 // nil: semver decides
		want  string
	}{
		{[]string{"v1.9.0", "v1.10.0", "v1.2.0"}, nil, "v1.10.0"},
		{[]string{"1.0.0", "v0.9.9"}, nil, "1.0.0"},
		{[]string{"v2.0.0-rc.1", "v1.9.9"}, nil, "v2.0.0-rc.1"},
		{[]string{"v2.0.0-rc.1", "v2.0.0"}, nil, "v2.0.0"},             // a release above its pre-releases
		{[]string{"v2.0.0-rc.2", "v2.0.0-rc.10"}, nil, "v2.0.0-rc.10"}, // numeric identifiers numerically
		{[]string{"v2.0.0-alpha", "v2.0.0-1"}, nil, "v2.0.0-alpha"},    // words above numbers
		{[]string{"v1.2.3+build.5", "v1.2.2"}, nil, "v1.2.3+build.5"},
		{[]string{"v1.10.0", "release-latest"}, nil, "v1.10.0"},
		{[]string{"v1.0.0-01", "v1.0.0-", "v0.9.0"}, nil, "v0.9.0"},                                              // policy.CompareVersions' reading: no versions
		{[]string{"v01.2.3", "v1.2", "vnext"}, map[string]int64{"v01.2.3": 3, "v1.2": 1, "vnext": 2}, "v01.2.3"}, // none is semver: newest commit
		{[]string{"prod-a", "prod-b"}, map[string]int64{"prod-a": 9, "prod-b": 9}, "prod-b"},                     // same time: by name
	} {
		tags := make([]checkout.TagRef, len(c.tags))
		for i, n := range c.tags {
			tags[i] = checkout.TagRef{Name: n}
		}
		times := noTimes
		if c.times != nil {
			times = func([]checkout.TagRef) (map[string]int64, error) { return c.times, nil }
		}
		got, err := pickNewest(tags, times)
		if err != nil || got.Name != c.want {
			t.Errorf("pickNewest(%v) = %q, %v; want %q", c.tags, got.Name, err, c.want)
		}
	}
}

func TestNewestPushed(t *testing.T) {
	for _, c := range []struct {
		tag  string
		refs []string // newest first
		want string
	}{
		{"v1.0.0", []string{"refs/tags/v1.0.0"}, "v1.0.0"},
		{"v1.2.0", []string{"refs/tags/v1.1.1", "refs/tags/v1.2.0"}, "v1.2.0"},
		{"v1.0.0", []string{"refs/tags/v1.10.0", "refs/tags/v1.9.0", "refs/tags/v1.0.0"}, "v1.10.0"},
		{"v1.0.0", []string{"refs/tags/other-9.0.0", "refs/heads/main", "refs/tags/v1.0.0"}, "v1.0.0"}, // not the glob's
		{"prod-a", []string{"refs/tags/prod-c", "refs/tags/prod-b", "refs/tags/prod-a"}, "prod-c"},     // newest push
		{"v1.0.0", []string{"refs/tags/vnext", "refs/tags/v1.0.0"}, "vnext"},
	} {
		if got := newestPushed(c.tag, c.refs, "v*"); c.tag[0] == 'v' && got != c.want {
			t.Errorf("newestPushed(%q, %v) = %q, want %q", c.tag, c.refs, got, c.want)
		}
		if got := newestPushed(c.tag, c.refs, "prod-*"); c.tag[0] == 'p' && got != c.want {
			t.Errorf("newestPushed(%q, %v) = %q, want %q", c.tag, c.refs, got, c.want)
		}
	}
}
