package cli

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/config"
	"github.com/hookgate/hookgate/internal/pgtest"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// runCheck runs hookgate check on a config of node web1 whose [server] table holds
// database, with two repositories: "here" (every node; a real checkout) and "there"
// (nodes = ["web2", "web3"], path missing on this host and no url).
func runCheck(t *testing.T, database string) (int, string) {
	t.Helper()
	checkout := testkit.NewOrigin(t).Clone()
	p := writeConfig(t, fmt.Sprintf("[server]\nnode = \"web1\"\n%s\n"+
		"[repos.here]\nsecret = \"x\"\npath = %q\n"+
		"[repos.there]\nsecret = \"y\"\npath = \"/nonexistent/there\"\nnodes = [\"web2\", \"web3\"]\n", database, checkout))
	var out, errOut bytes.Buffer
	code := Run([]string{"check", "--config", p}, &out, &errOut)
	return code, out.String() + errOut.String()
}

// checkLine finds check's line for what (a column's text) and returns it, failing t when
// there is none.
func checkLine(t *testing.T, out, status, what string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(status) + ` +` + regexp.QuoteMeta(what) + `  .*$`).FindString(out)
	if m == "" {
		t.Fatalf("check printed no %q line for %q:\n%s", status, what, out)
	}
	return m
}

// TestCheckSQLite: check reports the engine (SQLite), the version SQLite itself gives,
// the file, this node and what it deploys, and the nodes registered in the database with
// their status, last heartbeat and repositories. A repository this node does not deploy is
// not looked for on this host.
func TestCheckSQLite(t *testing.T) {
	file := filepath.Join(t.TempDir(), "h.db")
	st, err := store.Open(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RegisterNode(context.Background(), "web1", "v1.2.3", []string{"here"}); err != nil {
		t.Fatal(err)
	}
	if err := st.RegisterNode(context.Background(), "web2", "v1.2.4", []string{"here", "there"}); err != nil {
		t.Fatal(err)
	}
	// web0 was last seen an hour ago: down, with a warning.
	st.SetNow(func() time.Time { return time.Now().UTC().Add(-time.Hour) })
	if err := st.RegisterNode(context.Background(), "web0", "v1.2.0", []string{"here"}); err != nil {
		t.Fatal(err)
	}
	st.SetNow(func() time.Time { return time.Now().UTC() })
	nodes, err := st.Nodes(context.Background())
	st.Close()
	if err != nil || len(nodes) != 3 {
		t.Fatalf("nodes %v %v", nodes, err)
	}
	var version string
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT sqlite_version()`).Scan(&version); err != nil {
		t.Fatal(err)
	}

	code, out := runCheck(t, fmt.Sprintf("database = %q", file))
	if code != 0 {
		t.Fatalf("check exited %d:\n%s", code, out)
	}
	if l := checkLine(t, out, "ok", "database"); !strings.Contains(l, "SQLite "+file) || !strings.HasSuffix(l, "  "+version) {
		t.Errorf("database line %q, want SQLite, %s and version %s", l, file, version)
	}
	if l := checkLine(t, out, "ok", "this node"); !strings.Contains(l, "web1") || !strings.HasSuffix(l, "deploys: here") {
		t.Errorf("this node's line %q", l)
	}
	if l := checkLine(t, out, "warn", "node web0"); !strings.Contains(l, "down, v1.2.0") {
		t.Errorf("web0's line %q, want a warning that it is down", l)
	}
	for _, n := range nodes {
		name := n.Name
		if name == "web1" {
			name += " (this node)"
		}
		if name == "web0" {
			continue
		}
		want := fmt.Sprintf("up, %s, last seen %s", n.Version, n.LastSeen.Format("2006-01-02T15:04:05Z07:00"))
		if l := checkLine(t, out, "ok", "node "+name); !strings.Contains(l, want) || !strings.HasSuffix(l, "repos: "+strings.Join(n.Repos, ", ")) {
			t.Errorf("node line %q, want %q and repos %v", l, want, n.Repos)
		}
	}
	if l := checkLine(t, out, "ok", "there"); !strings.Contains(l, "not deployed by this node (nodes: web2, web3)") {
		t.Errorf("there's line %q", l)
	}
	// web3 never registered: a typo or a node to come, said without failing the check.
	if l := checkLine(t, out, "warn", "node web3"); !strings.Contains(l, "in repos.there.nodes") {
		t.Errorf("web3's warning %q", l)
	}
	if strings.Contains(out, "warn  node web2") {
		t.Errorf("a warning about web2, which is registered:\n%s", out)
	}
	if l := checkLine(t, out, "ok", "here"); !strings.Contains(l, "branch main at") {
		t.Errorf("here's line %q", l)
	}

	// The same repository deployed here, its path missing and no url: a failure.
	checkout := testkit.NewOrigin(t).Clone()
	p := writeConfig(t, fmt.Sprintf("[server]\nnode = \"web2\"\ndatabase = %q\n"+
		"[repos.here]\nsecret = \"x\"\npath = %q\n"+
		"[repos.there]\nsecret = \"y\"\npath = \"/nonexistent/there\"\nnodes = [\"web2\"]\n", file, checkout))
	var o, e bytes.Buffer
	if code := Run([]string{"check", "--config", p}, &o, &e); code != 1 || !strings.Contains(checkLine(t, o.String(), "FAIL", "there"), "path does not exist") {
		t.Fatalf("check on web2, which deploys there: exit %d\n%s%s", code, o.String(), e.String())
	}
}

// TestCheckPostgres: on PostgreSQL check reports the engine, the server's own version
// (SHOW server_version), the URL with its password masked, and the registered nodes; the
// password given in the URL (user part or ?password=) is printed nowhere, and an
// unreachable server is an error with a non-zero exit and no password either.
func TestCheckPostgres(t *testing.T) {
	const password = "pa55word-check-0123"
	t.Run("unreachable", func(t *testing.T) {
		for _, u := range []string{
			"postgres://hookgate:" + password + "@127.0.0.1:1/hookgate?connect_timeout=2",
			"postgresql://hookgate@127.0.0.1:1/hookgate?connect_timeout=2&password=" + password,
		} {
			t.Setenv("HG_TEST_DB", u)
			code, out := runCheck(t, `database_env = "HG_TEST_DB"`)
			if code != 1 || strings.Contains(out, password) || !strings.Contains(checkLine(t, out, "error", "database"), "PostgreSQL postgres") {
				t.Fatalf("check on an unreachable PostgreSQL: exit %d\n%s", code, out)
			}
		}
	})
	base := pgtest.Database(t)
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var version string
	if err := db.QueryRow(`SHOW server_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RegisterNode(context.Background(), "web2", "v7", []string{"here", "there"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	// The test cluster trusts local connections, so a password in the URL is accepted and
	// ignored: check gets through and must still print it nowhere.
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	u.User = url.UserPassword(q.Get("user"), password)
	q.Del("user")
	u.RawQuery = q.Encode()
	withQuery := base + "&password=" + password
	for _, dsn := range []string{u.String(), withQuery} {
		t.Setenv("HG_TEST_DB", dsn)
		code, out := runCheck(t, `database_env = "HG_TEST_DB"`)
		if code != 0 || strings.Contains(out, password) {
			t.Fatalf("check on PostgreSQL: exit %d\n%s", code, out)
		}
		l := checkLine(t, out, "ok", "database")
		if !strings.Contains(l, "PostgreSQL "+store.Redact(dsn)) || !strings.Contains(l, "xxxxx") || !strings.HasSuffix(l, "  "+version) {
			t.Errorf("database line %q, want PostgreSQL, %s and version %s", l, store.Redact(dsn), version)
		}
		if l := checkLine(t, out, "ok", "node web2"); !strings.Contains(l, "up, v7, last seen") || !strings.HasSuffix(l, "repos: here, there") {
			t.Errorf("node line %q", l)
		}
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
		code := Run([]string{"check", "--config", p}, &out, &errOut)
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

// TestCheckShowsNotifyTargets: `hookgate check` lists each target by name and host, never
// its URL's path (a Slack credential), and refuses an invalid target.
func TestCheckShowsNotifyTargets(t *testing.T) {
	origin := testkit.NewOrigin(t)
	p := writeConfig(t, fmt.Sprintf(`
[[notify]]
name = "ops"
type = "slack"
url = "https://hooks.slack.example/services/T1/B1/s3cr3tpath"

[repos.site]
secret = "x"
path = %q

[[repos.site.notify]]
name = "team"
type = "webhook"
url = "http://127.0.0.1:9000/hook"
secret = "y"
events = ["recovery"]
`, origin.Clone()))
	var out, errOut bytes.Buffer
	if code := Run([]string{"check", "--config", p}, &out, &errOut); code != 0 {
		t.Fatalf("check: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"notify ops", "slack to hooks.slack.example", "every repository; on failure, recovery",
		"notify team", "webhook to 127.0.0.1:9000", "repository site; on recovery"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "s3cr3tpath") {
		t.Error("check printed a Slack URL's credential path")
	}

	bad := writeConfig(t, strings.Replace(readFile(t, p), `events = ["recovery"]`, `events = ["deploy"]`, 1))
	out.Reset()
	errOut.Reset()
	if code := Run([]string{"check", "--config", bad}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), `repos.site.notify[0] (team): events: "deploy"`) {
		t.Fatalf("check with a bad event: exit %d\n%s", code, errOut.String())
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
func TestProviderConfig(t *testing.T) {
	cfg, err := config.Load(writeConfig(t, `
[repos.a]
secret = "x"
path = "/a"
[repos.b]
secret = "x"
path = "/b"
provider = "gitea"
[repos.c]
secret = "x"
path = "/c"
provider = "gitlab"
`))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, h := range cfg.Hooks() {
		got[h.Name] = h.Provider
	}
	if got["a"] != "github" || got["b"] != "gitea" || got["c"] != "gitlab" {
		t.Fatalf("providers %v", got)
	}

	bad := writeConfig(t, "[repos.site]\nsecret = \"x\"\npath = \"/x\"\nprovider = \"bitbucket\"\n")
	if _, err := config.Load(bad); err == nil || !strings.Contains(err.Error(), `repos.site: provider "bitbucket"`) {
		t.Fatalf("unknown provider: %v", err)
	}
	var stdout, stderr bytes.Buffer
	if code := Run([]string{"check", "--config", bad}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), `repos.site: provider "bitbucket"`) {
		t.Fatalf("check with an unknown provider: exit %d, %s", code, stderr.String())
	}
}

// TestCheckLooksOriginUp: check asks each origin for its branch (one ref listing), and says
// reachable, not found (a path or repository that is not there), branch not found (both
// problems: exit 1) or unreachable (a warning), each naming origin's URL.
func TestCheckLooksOriginUp(t *testing.T) {
	good := testkit.NewOrigin(t)
	head := good.Head()
	moved := testkit.NewOrigin(t)
	movedCheckout := moved.Clone()
	gone := filepath.Join(t.TempDir(), "moved-away.git")
	testkit.Git(t, movedCheckout, "remote", "set-url", "origin", gone)
	p := writeConfig(t, fmt.Sprintf("[server]\ndatabase = %q\n"+
		"[repos.good]\nsecret = \"x\"\npath = %q\n"+
		"[repos.gone]\nsecret = \"y\"\npath = %q\n"+
		"[repos.wrongbranch]\nsecret = \"z\"\npath = %q\nbranch = \"release\"\nurl = %q\n"+
		"[repos.offline]\nsecret = \"w\"\npath = %q\nurl = \"https://127.0.0.1:1/acme/app.git\"\n",
		filepath.Join(t.TempDir(), "h.db"), good.Clone(), movedCheckout, filepath.Join(t.TempDir(), "wb"), good.Bare,
		filepath.Join(t.TempDir(), "offline")))
	var out, errOut bytes.Buffer
	code := Run([]string{"check", "--config", p}, &out, &errOut)
	all := out.String() + errOut.String()
	if code != 1 {
		t.Fatalf("check with a missing origin exited %d, want 1:\n%s", code, all)
	}
	if l := checkLine(t, all, "ok", "good origin"); !strings.Contains(l, good.Bare) || !strings.Contains(l, "reachable: main at "+head[:7]) {
		t.Errorf("good origin: %q", l)
	}
	if l := checkLine(t, all, "FAIL", "gone origin"); !strings.Contains(l, gone) || !strings.Contains(l, "not found") {
		t.Errorf("missing origin: %q", l)
	}
	if l := checkLine(t, all, "FAIL", "wrongbranch origin"); !strings.Contains(l, good.Bare) || !strings.Contains(l, `branch not found: `) {
		t.Errorf("origin without the branch: %q", l)
	}
	if l := checkLine(t, all, "warn", "offline origin"); !strings.Contains(l, "https://127.0.0.1:1/acme/app.git") || !strings.Contains(l, "unreachable: ") {
		t.Errorf("origin that does not answer: %q", l)
	}
	if !strings.Contains(all, "2 problems") {
		t.Errorf("check counted other than the two origins that answered no:\n%s", all)
	}
}

// TestCheckReportsHookErrors: check names the keys of a target that sets both branch and
// tags, and of one bound to a hook that does not exist, and exits 1.
func TestCheckReportsHookErrors(t *testing.T) {
	bad := writeConfig(t, "[hooks.shop]\nsecret = \"x\"\n[repos.prod]\nhook = \"shop\"\npath = \"/p\"\nbranch = \"main\"\ntags = \"v*\"\n[repos.docs]\nhook = \"shopp\"\npath = \"/d\"\n")
	var stdout, stderr bytes.Buffer
	if code := Run([]string{"check", "--config", bad}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "repos.prod: set branch or tags, not both") ||
		!strings.Contains(stderr.String(), `repos.docs: hook "shopp": no [hooks.shopp] table`) {
		t.Fatalf("check: exit %d, %s", code, stderr.String())
	}
}

// TestCheckLooksTagsUp: for a tag target check reports its checkout on the local branch
// its deploys keep (not a FAIL for having no branch), origin's newest matching tag (by
// semantic version), and warns when no tag matches the glob, since nothing deploys then.
func TestCheckLooksTagsUp(t *testing.T) {
	origin := testkit.NewOrigin(t)
	newest := origin.Commit(map[string]string{"s.txt": "10\n"}, "release 1.10")
	origin.AnnotatedTag("v1.10.0", newest, "1.10")
	origin.Tag("v1.9.0", origin.Commit(map[string]string{"s.txt": "9\n"}, "release 1.9"))
	p := writeConfig(t, fmt.Sprintf("[server]\ndatabase = %q\n"+
		"[repos.prod]\nsecret = \"x\"\npath = %q\ntags = \"v*\"\n"+
		"[repos.rc]\nsecret = \"y\"\npath = %q\ntags = \"rc-*\"\n",
		filepath.Join(t.TempDir(), "h.db"), origin.Clone(), origin.Clone()))
	var out, errOut bytes.Buffer
	code := Run([]string{"check", "--config", p}, &out, &errOut)
	all := out.String() + errOut.String()
	if l := checkLine(t, all, "ok", "prod"); !strings.Contains(l, "tags v*, local branch main at "+origin.Head()[:7]) {
		t.Errorf("tag target's checkout: %q", l)
	}
	if l := checkLine(t, all, "ok", "prod origin"); !strings.Contains(l, origin.Bare) ||
		!strings.Contains(l, `reachable: newest tag matching "v*" is v1.10.0 at `+newest[:7]) {
		t.Errorf("tag target's origin: %q\n%s", l, all)
	}
	if l := checkLine(t, all, "warn", "rc origin"); !strings.Contains(l, `reachable, but no tag matches "rc-*": nothing is deployed until one is pushed`) {
		t.Errorf("tag target with no matching tag: %q\n%s", l, all)
	}
	if code != 0 {
		t.Errorf("check exited %d:\n%s", code, all)
	}
}
