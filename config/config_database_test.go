package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDatabaseSetting: [server] database takes a path or a PostgreSQL URL, database_env a
// variable holding either; the two together, an empty variable or another scheme are
// refused, and no error quotes a URL (it may hold a password).
func TestDatabaseSetting(t *testing.T) {
	t.Setenv("HG_TEST_DB_URL", "postgresql://hookgate:pa55word@db.example:5432/hookgate?sslmode=require")
	t.Setenv("HG_TEST_DB_EMPTY", "")
	for _, tc := range []struct {
		name, server string
		want         string // the resolved database, or the error
		wantErr      bool
	}{
		{"default", ``, "data/hookgate.db", false},
		{"path", `database = "var/h.db"`, "var/h.db", false},
		{"url", `database = "postgres:///hookgate?host=/run/postgresql"`, "postgres:///hookgate?host=/run/postgresql", false},
		{"env", `database_env = "HG_TEST_DB_URL"`, "postgresql://hookgate:pa55word@db.example:5432/hookgate?sslmode=require", false},
		{"both", "database = \"h.db\"\ndatabase_env = \"HG_TEST_DB_URL\"", "set database or database_env, not both", true},
		{"empty env", `database_env = "HG_TEST_DB_EMPTY"`, "environment variable HG_TEST_DB_EMPTY is empty or unset", true},
		{"other scheme", `database = "mysql://u:pa55word@h/db"`, "neither a file path nor a postgres:// or postgresql:// URL", true},
		{"bad url", `database = "postgres://u:pa55word@h:notaport/db"`, "the PostgreSQL URL does not parse", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, "[server]\n"+tc.server+"\n[repos.site]\nsecret = \"x\"\npath = \"site\"\n")
			cfg, err := Load(p)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "pa55word") {
					t.Fatalf("error %v, want one saying %q without the password", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if !strings.Contains(want, "://") {
				want = filepath.Join(filepath.Dir(p), want)
			}
			if cfg.Database() != want {
				t.Fatalf("database %q, want %q", cfg.Database(), want)
			}
			if b, _ := json.Marshal(cfg); strings.Contains(string(b), "pa55word") {
				t.Fatal("the config's exported fields hold the database password")
			}
		})
	}
}

// TestNodeSetting: [server] node defaults to the host name's first label and must be a
// plain name.
func TestNodeSetting(t *testing.T) {
	load := func(node string) (*Config, error) {
		return Load(writeConfig(t, "[server]\n"+node+"\n[repos.site]\nsecret = \"x\"\npath = \"site\"\n"))
	}
	cfg, err := load("")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if want := strings.SplitN(host, ".", 2)[0]; cfg.Server.Node != want {
		t.Fatalf("default node %q, want %q", cfg.Server.Node, want)
	}
	if cfg, err = load(`node = "web-1.eu"`); err != nil || cfg.Server.Node != "web-1.eu" {
		t.Fatalf("node web-1.eu: %v %v", cfg, err)
	}
	for _, bad := range []string{`node = "web 1"`, `node = "-web"`, `node = "<b>"`, `node = "` + strings.Repeat("x", 64) + `"`} {
		if _, err := load(bad); err == nil || !strings.Contains(err.Error(), "server.node") {
			t.Errorf("%s: %v, want an error about server.node", bad, err)
		}
	}
}
