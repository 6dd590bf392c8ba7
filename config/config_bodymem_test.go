package config

import (
	"strings"
	"testing"
)

// TestConfigMaxBodyMemory: server.max_body_memory is read as a size, defaults to the
// server's bound (0 here), and may not be smaller than max_body.
func TestConfigMaxBodyMemory(t *testing.T) {
	const repo = "\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n"
	for _, tc := range []struct {
		server string
		want   int64
		err    string
	}{
		{server: "", want: 0},
		{server: "max_body_memory = \"128MB\"", want: 128 << 20},
		{server: "max_body = \"1MB\"\nmax_body_memory = \"1MB\"", want: 1 << 20},
		{server: "max_body_memory = \"lots\"", err: "server.max_body_memory"},
		{server: "max_body_memory = \"10MB\"", err: "server.max_body_memory (10MB) is less than max_body (25MB)"},
	} {
		cfg, err := Load(writeConfig(t, "[server]\n"+tc.server+"\n"+repo))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one containing %q", tc.server, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.server, err)
		case tc.err == "" && cfg.maxBodyMemory != tc.want:
			t.Errorf("%q: max_body_memory %d, want %d", tc.server, cfg.maxBodyMemory, tc.want)
		}
	}
}
