package config

import (
	"strings"
	"testing"
)

// TestConfigObjectLimits: server.max_object_size and max_fetch_size are read as sizes,
// have defaults, reach every repository's deploy, and the total may not be below one object.
func TestConfigObjectLimits(t *testing.T) {
	const repo = "\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n"
	for _, tc := range []struct {
		server     string
		obj, total int64
		err        string
	}{
		{server: "", obj: 100 << 20, total: 4 << 30},
		{server: "max_object_size = \"1GB\"\nmax_fetch_size = \"8GB\"", obj: 1 << 30, total: 8 << 30},
		{server: "max_object_size = \"big\"", err: "server.max_object_size"},
		{server: "max_fetch_size = \"0\"", err: "server.max_fetch_size"},
		{server: "max_object_size = \"8GB\"", err: "server.max_fetch_size (4GB) is less than max_object_size (8GB)"},
	} {
		cfg, err := Load(writeConfig(t, "[server]\n"+tc.server+"\n"+repo))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one containing %q", tc.server, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.server, err)
		case tc.err == "":
			l := cfg.RepoList()[0].Limits
			if l.MaxObjectSize != tc.obj || l.MaxFetchSize != tc.total {
				t.Errorf("%q: limits %+v, want %d and %d", tc.server, l, tc.obj, tc.total)
			}
		}
	}
}
