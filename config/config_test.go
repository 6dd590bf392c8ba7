package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/store"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestShippedConfigLoads(t *testing.T) {
	cfg, err := Load("../config.toml")
	if err != nil {
		t.Fatalf("the shipped config.toml does not load: %v", err)
	}
	demo, ok := cfg.Repos["demo"]
	if !ok || len(demo.Commands) == 0 || demo.URL == "" {
		t.Fatalf("the shipped config has no usable demo repository: %+v", demo)
	}
	if cfg.Server.Listen != "127.0.0.1:8080" || !filepath.IsAbs(cfg.Server.Database) {
		t.Fatalf("server section: %+v", cfg.Server)
	}
}

func TestConfigDefaultsAndPaths(t *testing.T) {
	p := writeConfig(t, `
[repos.site]
secret = "s3cret-value"
path = "checkouts/site"
url = "../origin.git"
`)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	r := cfg.Repos["site"]
	if cfg.Server.Listen != "127.0.0.1:8080" || cfg.Server.Database != filepath.Join(dir, "data/hookgate.db") ||
		cfg.maxBody != 25<<20 || cfg.Server.Workers != 4 || cfg.Server.MaxClones != 1 || r.Depth != 0 || r.Branch != "main" || r.timeout != 10*time.Minute ||
		r.Mode != "ff" || r.Path != filepath.Join(dir, "checkouts/site") || r.URL != filepath.Join(filepath.Dir(dir), "origin.git") {
		t.Fatalf("defaults or paths wrong: server %+v repo %+v", cfg.Server, r)
	}
	if string(r.secret) != "s3cret-value" {
		t.Fatal("secret not resolved")
	}
	if cfg.Server.synchronous != store.SynchronousFull {
		t.Fatalf("sqlite_synchronous defaults to %q, want full", cfg.Server.synchronous)
	}
	cfg, err = Load(writeConfig(t, "[server]\nsqlite_synchronous = \"normal\"\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n"))
	if err != nil || cfg.Server.synchronous != store.SynchronousNormal {
		t.Fatalf("sqlite_synchronous = \"normal\": %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Setenv("HOOKGATE_TEST_SECRET", "from-env")
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte("from-file\n"), 0o600)
	for _, tc := range []struct {
		name string
		body string
		want []string
	}{
		{"unknown key names key and line", "[server]\nlisten = \"127.0.0.1:1\"\n\n[repos.site]\nsecret = \"x\"\npath = \"/x\"\nsecrte = \"typo\"\n",
			[]string{`unknown key "repos.site.secrte"`, "line 7"}},
		{"unknown server key", "[server]\nlisen = \"x\"\n[repos.a]\nsecret=\"x\"\npath=\"/x\"\n", []string{`unknown key "server.lisen"`, "line 2"}},
		{"two secrets", "[repos.a]\nsecret = \"x\"\nsecret_env = \"HOOKGATE_TEST_SECRET\"\npath = \"/x\"\n", []string{"exactly one of secret"}},
		{"no secret", "[repos.a]\npath = \"/x\"\n", []string{"exactly one of secret"}},
		{"empty env secret", "[repos.a]\nsecret_env = \"HOOKGATE_TEST_UNSET\"\npath = \"/x\"\n", []string{"HOOKGATE_TEST_UNSET is empty or unset"}},
		{"no path", "[repos.a]\nsecret = \"x\"\n", []string{"path is required"}},
		{"bad name", "[repos.\"a b\"]\nsecret = \"x\"\npath = \"/x\"\n", []string{"repos.a b", "letters, digits"}},
		{"bad mode", "[repos.a]\nsecret = \"x\"\npath = \"/x\"\nmode = \"merge\"\n", []string{`mode "merge"`}},
		{"bad timeout", "[repos.a]\nsecret = \"x\"\npath = \"/x\"\ntimeout = \"soon\"\n", []string{"timeout", `"soon"`}},
		{"bad size", "[server]\nmax_body = \"lots\"\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n", []string{"server.max_body"}},
		{"zero workers", "[server]\nworkers = 0\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n", []string{"server.workers"}},
		{"zero max_clones", "[server]\nmax_clones = 0\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n", []string{"server.max_clones must be at least 1"}},
		{"negative depth", "[repos.a]\nsecret = \"x\"\npath = \"/x\"\ndepth = -1\n", []string{"repos.a", "depth -1"}},
		{"no repos", "[server]\nworkers = 2\n", []string{"at least one repository"}},
		{"bad proxy", "[server]\ntrusted_proxies = [\"nope\"]\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n", []string{"trusted_proxies"}},
		{"bad synchronous", "[server]\nsqlite_synchronous = \"off\"\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n", []string{"server.sqlite_synchronous", `"off"`, `"full" or "normal"`}},
		{"hostname with scheme", "[server]\nhostnames = [\"https://hooks.example.com\"]\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n",
			[]string{"server.hostnames", `"https://hooks.example.com" is not a host name`}},
		{"hostname with port", "[server]\nhostnames = [\"hooks.example.com:443\"]\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n",
			[]string{"server.hostnames", `"hooks.example.com:443"`, "without scheme, port"}},
		{"wildcard hostname", "[server]\nhostnames = [\"*.example.com\"]\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n",
			[]string{"server.hostnames", `"*.example.com"`, "wildcard"}},
		{"empty hostname", "[server]\nhostnames = [\"\"]\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n",
			[]string{"server.hostnames", `"" is not a host name`}},
		{"hostnames not a list", "[server]\nhostnames = \"hooks.example.com\"\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n", []string{"line 2"}},
		{"wrong type", "[server]\nworkers = \"four\"\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n", []string{"line 2"}},
		// Type errors name the key as written in TOML, and the kinds in TOML's words.
		{"string for a number", "[server]\nworkers = \"four\"\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n",
			[]string{"line 2", "server.workers: expected a number, got a string"}},
		{"float for a number", "[server]\nmax_clones = 1.5\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n",
			[]string{"server.max_clones: expected a whole number, got a float"}},
		{"string for a list", "[repos.a]\nsecret = \"x\"\npath = \"/x\"\ncommands = \"make deploy\"\n",
			[]string{"line 4", "repos.a.commands: expected a list, got a string"}},
		{"number for a duration", "[repos.a]\nsecret = \"x\"\npath = \"/x\"\npoll = 5\n",
			[]string{"repos.a.poll: expected a string, got an integer"}},
		{"number for a table", "repos = 5\n", []string{"repos: expected a table, got an integer"}},
		// check refuses what serve could not bind, by its form.
		{"listen without port", "[server]\nlisten = \"localhost\"\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n",
			[]string{"server.listen", `"localhost" is not host:port`}},
		{"listen port out of range", "[server]\nlisten = \"127.0.0.1:99999\"\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n",
			[]string{"server.listen", `port "99999" is not a number from 1 to 65535`}},
		{"listen port by name", "[server]\nlisten = \"127.0.0.1:http\"\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n",
			[]string{"server.listen", `port "http"`}},
		{"listen URL", "[server]\nlisten = \"http://127.0.0.1:8080\"\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n",
			[]string{"server.listen", "is not host:port"}},
		{"listen empty", "[server]\nlisten = \"\"\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n", []string{"server.listen: empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertConfigError(t, tc.body, tc.want, "from-env", "from-file")
			_, err := Load(writeConfig(t, tc.body))
			for _, goName := range []string{"main.", "ServerConfig", "RepoConfig", "struct field", "[]string"} {
				if strings.Contains(err.Error(), goName) {
					t.Errorf("error %q names Go's %q, not the TOML key", err, goName)
				}
			}
		})
	}

	hosts, err := Load(writeConfig(t, "[server]\nhostnames = [\"hooks.example.com\", \"Ops.Example.COM.\", \"192.0.2.10\", \"[2001:db8::1]\", \"gw_internal\"]\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\n"))
	if err != nil || len(hosts.Server.Hostnames) != 5 {
		t.Fatalf("valid hostnames refused: %v", err)
	}

	cfg, err := Load(writeConfig(t, "[repos.a]\nsecret_env = \"HOOKGATE_TEST_SECRET\"\npath = \"/x\"\n[repos.b]\nsecret_file = \""+secretFile+"\"\npath = \"/y\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.Repos["a"].secret) != "from-env" || string(cfg.Repos["b"].secret) != "from-file" {
		t.Fatal("secret_env or secret_file not resolved (or the file's newline kept)")
	}
}

// assertConfigError loads body and checks the error names each of want and none of secrets.
func assertConfigError(t *testing.T, body string, want []string, secrets ...string) {
	t.Helper()
	_, err := Load(writeConfig(t, body))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	for _, secret := range secrets {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks a secret (%s): %q", secret, err)
		}
	}
}

func TestCommandEnvDropsSecrets(t *testing.T) {
	t.Setenv("SITE_SECRET", "hush")
	t.Setenv("ADMIN_TOKEN", "hush2")
	t.Setenv("KEEP_ME", "yes")
	assertCommandEnvHidesHush(t, "[server]\nadmin_token_env = \"ADMIN_TOKEN\"\n[repos.a]\nsecret_env = \"SITE_SECRET\"\npath = \"/x\"\n")
}

// assertCommandEnvHidesHush loads body and checks that deploy commands get KEEP_ME=yes and
// no variable whose value holds "hush" (the test's secrets).
func assertCommandEnvHidesHush(t *testing.T, body string) {
	t.Helper()
	cfg, err := Load(writeConfig(t, body))
	if err != nil {
		t.Fatal(err)
	}
	env := cfg.CommandEnv()
	if !slices.Contains(env, "KEEP_ME=yes") {
		t.Fatal("ordinary variables must reach deploy commands")
	}
	for _, kv := range env {
		if strings.Contains(kv, "hush") {
			t.Fatalf("deploy commands would see a secret: %s", kv)
		}
	}
}

// TestCommandEnvDropsTheDatabasePassword: the variable database_env names holds a URL that
// can carry the database's password, and PGPASSWORD is the driver's: deploy commands see
// neither (the review of the fleet docs found DATABASE_URL in a command's env).
func TestCommandEnvDropsTheDatabasePassword(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://hookgate:hush@db.example:5432/hookgate")
	t.Setenv("PGPASSWORD", "hush2")
	t.Setenv("KEEP_ME", "yes")
	assertCommandEnvHidesHush(t, "[server]\ndatabase_env = \"DATABASE_URL\"\n[repos.a]\nsecret = \"s\"\npath = \"/x\"\n")
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"25MB": 25 << 20, "512KiB": 512 << 10, "100": 100, "1 GB": 1 << 30, "10b": 10} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MB", "-1MB", "10XB", "1.5MB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestConfigPoll(t *testing.T) {
	for _, c := range []struct {
		poll string // "" leaves the key out
		want time.Duration
		err  string
	}{
		{"", 10 * time.Minute, ""},
		{"0", 0, ""},
		{"1s", time.Second, ""},
		{"90s", 90 * time.Second, ""},
		{"500ms", 0, "at least 1s"},
		{"-1m", 0, "is not a duration"},
		{"often", 0, "is not a duration"},
	} {
		body := "[repos.site]\nsecret = \"s3cret-value\"\npath = \"site\"\n"
		if c.poll != "" {
			body += "poll = \"" + c.poll + "\"\n"
		}
		cfg, err := Load(writeConfig(t, body))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), "poll") || !strings.Contains(err.Error(), c.err) {
				t.Errorf("poll %q: error %v, want one about poll saying %q", c.poll, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("poll %q: %v", c.poll, err)
			continue
		}
		if got := cfg.RepoList()[0].Poll; got != c.want {
			t.Errorf("poll %q: %v, want %v", c.poll, got, c.want)
		}
	}
}

func TestDepthReachesTheWorkers(t *testing.T) {
	cfg, err := Load(writeConfig(t, "[server]\nmax_clones = 2\n[repos.a]\nsecret = \"x\"\npath = \"/x\"\ndepth = 1\n[repos.b]\nsecret = \"x\"\npath = \"/y\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	list := cfg.RepoList()
	if cfg.Server.MaxClones != 2 || len(list) != 2 || list[0].Depth != 1 || list[1].Depth != 0 {
		t.Fatalf("max_clones %d, repos %+v", cfg.Server.MaxClones, list)
	}
}
