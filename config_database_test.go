package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/internal/pgtest"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
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
			cfg, err := LoadConfig(p)
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

// TestCheckReportsDatabase: hookgate check names the engine and its version, says a SQLite
// file is not created yet without creating it, and fails on a PostgreSQL it cannot reach
// without printing the URL's password.
func TestCheckReportsDatabase(t *testing.T) {
	origin := testkit.NewOrigin(t)
	checkout := origin.Clone()
	check := func(database string, env ...string) (int, string) {
		t.Helper()
		p := writeConfig(t, fmt.Sprintf("[server]\n%s\n[repos.site]\nsecret = \"x\"\npath = %q\n", database, checkout))
		var out, errOut bytes.Buffer
		code := run([]string{"check", "--config", p}, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	code, out := check(`database = "data/new.db"`)
	if code != 0 || !strings.Contains(out, "SQLite") || !strings.Contains(out, "not created yet") {
		t.Fatalf("check on a new SQLite file: exit %d\n%s", code, out)
	}
	t.Setenv("HG_TEST_DB", "postgres://hookgate:pa55word@127.0.0.1:1/hookgate?connect_timeout=2")
	code, out = check(`database_env = "HG_TEST_DB"`)
	if code != 1 || !strings.Contains(out, "error") || !strings.Contains(out, "PostgreSQL") || strings.Contains(out, "pa55word") {
		t.Fatalf("check on an unreachable PostgreSQL: exit %d\n%s", code, out)
	}
	// A database a gateway has started on lists its node.
	file := filepath.Join(t.TempDir(), "h.db")
	st, err := store.Open(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RegisterNode(context.Background(), "web1", "v9", []string{"site"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, out = check(fmt.Sprintf("database = %q", file))
	if code != 0 || !strings.Contains(out, "node web1") || !strings.Contains(out, "up, v9") || !strings.Contains(out, "repos: site") {
		t.Fatalf("check lists no node: exit %d\n%s", code, out)
	}
	if pgtest.Enabled(t) {
		t.Setenv("HG_TEST_DB", pgtest.Database(t))
		code, out = check(`database_env = "HG_TEST_DB"`)
		if code != 0 || !strings.Contains(out, "PostgreSQL") || !strings.Contains(out, "ok  ") {
			t.Fatalf("check on PostgreSQL: exit %d\n%s", code, out)
		}
		t.Logf("%s", out)
	}
}

// TestNodeSetting: [server] node defaults to the host name's first label and must be a
// plain name.
func TestNodeSetting(t *testing.T) {
	load := func(node string) (*Config, error) {
		return LoadConfig(writeConfig(t, "[server]\n"+node+"\n[repos.site]\nsecret = \"x\"\npath = \"site\"\n"))
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
