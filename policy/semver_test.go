package policy

import "testing"

// TestCompareVersions: the one reading of versions, shared by "older than live" (policy,
// store) and a tag target's newest tag (repos): semver.org's order, a leading v allowed,
// and no ordering at all for what is not MAJOR.MINOR.PATCH[-PRE][+BUILD].
func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
		ok   bool
	}{
		{"v1.0.0", "1.0.0", 0, true},
		{"v1.9.0", "v1.10.0", -1, true},
		{"v1.0.0-rc.1", "v1.0.0", -1, true}, // a pre-release below its release
		{"v1.0.0-rc.2", "v1.0.0-rc.10", -1, true},
		{"v1.0.0-1", "v1.0.0-alpha", -1, true}, // numbers below words
		{"v1.0.0-alpha", "v1.0.0-alpha.1", -1, true},
		{"v1.2.3+build.5", "v1.2.3", 0, true},
		{"v1.2", "v1.2.0", 0, false},        // two numbers: not a version
		{"v01.2.3", "v1.2.3", 0, false},     // a leading zero
		{"v1.0.0-", "v1.0.0", 0, false},     // an empty pre-release is no release
		{"v1.0.0-a..b", "v1.0.0", 0, false}, // an empty identifier
		{"v1.0.0-01", "v1.0.0", 0, false},   // a numeric identifier with a leading zero
		{"v1.0.0-rc_1", "v1.0.0", 0, false},
		{"vnext", "v1.0.0", 0, false},
	} {
		got, ok := CompareVersions(c.a, c.b)
		if got != c.want || ok != c.ok {
			t.Errorf("CompareVersions(%q, %q) = %d, %v; want %d, %v", c.a, c.b, got, ok, c.want, c.ok)
		}
		if back, ok := CompareVersions(c.b, c.a); c.ok && (back != -c.want || !ok) {
			t.Errorf("CompareVersions(%q, %q) = %d, %v; want %d", c.b, c.a, back, ok, -c.want)
		}
	}
	if OlderTag("refs/tags/v1.0.0-", "refs/tags/v1.0.1") != "" {
		t.Error(`"v1.0.0-" read as a version older than live v1.0.1`)
	}
}
