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
