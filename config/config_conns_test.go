package config

import (
	"strings"
	"testing"
)

// TestConfigConnectionLimits: max_connections, max_connections_per_client and
// max_header_bytes are read as given, 0 or absent leaves the server's defaults, and bad
// values are errors naming the key; each needs a restart.
func TestConfigConnectionLimits(t *testing.T) {
	const repo = "\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n"
	type want struct{ total, perClient, header int }
	for _, tc := range []struct {
		server string
		want   want
		err    string
	}{
		{server: "", want: want{}},
		{server: "max_connections = 500\nmax_connections_per_client = 20\nmax_header_bytes = \"32KB\"", want: want{500, 20, 32 << 10}},
		{server: "max_connections = 0\nmax_connections_per_client = 0", want: want{}},
		{server: "max_connections = -1", err: "server.max_connections must be at least 1"},
		{server: "max_connections_per_client = -5", err: "server.max_connections_per_client must be at least 1"},
		{server: "max_connections = 10\nmax_connections_per_client = 11", err: "server.max_connections_per_client (11) is more than server.max_connections (10)"},
		{server: "max_header_bytes = \"lots\"", err: "server.max_header_bytes"},
		{server: "max_header_bytes = \"1KB\"", err: `server.max_header_bytes: "1KB" is outside 4KB to 1MB`},
		{server: "max_header_bytes = \"2MB\"", err: `server.max_header_bytes: "2MB" is outside 4KB to 1MB`},
	} {
		cfg, err := Load(writeConfig(t, "[server]\n"+tc.server+"\n"+repo))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one containing %q", tc.server, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.server, err)
		case tc.err == "":
			if got := (want{cfg.Server.MaxConnections, cfg.Server.MaxConnectionsPerClient, cfg.Server.maxHeaderBytes}); got != tc.want {
				t.Errorf("%q: %+v, want %+v", tc.server, got, tc.want)
			}
		}
	}
	a, err := Load(writeConfig(t, "[server]\ndatabase = \"/var/lib/hookgate/h.db\"\n"+repo))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(writeConfig(t, "[server]\ndatabase = \"/var/lib/hookgate/h.db\"\nmax_connections = 9\nmax_connections_per_client = 3\nmax_header_bytes = \"8KB\"\n"+repo))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(RestartRequired(a.Server, b.Server), " ")
	if got != "server.max_connections server.max_connections_per_client server.max_header_bytes" {
		t.Errorf("restart required: %q", got)
	}
}
