package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// TestSecretsNeverLeave runs the real binary with every way of giving it a secret (inline,
// secret_env, secret_file, admin_token_env, token_env, and a GitLab token, which GitLab
// sends in clear with every delivery), drives every path that could print
// one (good and bad deliveries, a deploy that succeeds and two that fail, every API route
// and page, `check`, `send`), and then looks for each secret in everything that left the
// process: its log, every HTTP answer, the command outputs, and the raw SQLite files. The
// deploy commands' environment must not hold the secret variables either.
func TestSecretsNeverLeave(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"inline secret":   randomHex(t),
		"secret_env":      randomHex(t),
		"secret_file":     randomHex(t),
		"admin_token_env": randomHex(t),
		"token_env":       randomHex(t),
		// GitLab sends the secret itself in X-Gitlab-Token with every delivery.
		"gitlab token": randomHex(t),
		// A password in a repository url, which check, the deploy error and go-git quote.
		"url password": randomHex(t),
	}
	// Not HOOKGATE_*: the gateway drops those from deploy commands anyway, which would hide
	// whether it drops the secret variables by name.
	const betaVar, adminVar, tokenVar = "SECRETS_TEST_BETA_SECRET", "SECRETS_TEST_ADMIN_TOKEN", "SECRETS_TEST_GIT_TOKEN"
	env := []string{
		betaVar + "=" + secrets["secret_env"],
		adminVar + "=" + secrets["admin_token_env"],
		tokenVar + "=" + secrets["token_env"],
	}
	admin := secrets["admin_token_env"]

	origin := testkit.NewOrigin(t)
	dir := t.TempDir()
	alpha, beta, delta := origin.Clone(), origin.Clone(), origin.Clone()
	if err := os.WriteFile(filepath.Join(dir, "gamma.secret"), []byte(secrets["secret_file"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	dbPath := filepath.Join(dir, "data", "hookgate.db")
	cfgPath := filepath.Join(dir, "config.toml")
	cfg := fmt.Sprintf(`
[server]
listen = %[1]q
database = %[2]q
admin_token_env = %[3]q
shutdown_timeout = "5s"

[repos.alpha]
secret = %[4]q
path = %[5]q
commands = ["env > %[6]s/env-alpha.txt", "echo deployed alpha $HOOKGATE_COMMIT"]
timeout = "1m"

[repos.beta]
secret_env = %[7]q
path = %[8]q
commands = ["env > %[6]s/env-beta.txt", "echo failing on purpose; exit 7"]
timeout = "1m"

[repos.gamma]
secret_file = "gamma.secret"
path = %[9]q
url = "https://127.0.0.1:1/x.git"
token_env = %[10]q
commands = ["env > %[6]s/env-gamma.txt"]
timeout = "1m"

[repos.delta]
provider = "gitlab"
secret = %[11]q
path = %[12]q
commands = ["echo deployed delta"]
timeout = "1m"

[repos.epsilon]
secret = %[13]q
path = %[14]q
url = "https://deployer:%[15]s@127.0.0.1:2/x.git"
commands = ["echo deployed epsilon"]
timeout = "1m"
`, addr, dbPath, adminVar, secrets["inline secret"], alpha, dir, betaVar, beta,
		filepath.Join(dir, "gamma-checkout"), tokenVar, secrets["gitlab token"], delta,
		randomHex(t), filepath.Join(dir, "epsilon-checkout"), secrets["url password"])
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	hookSecret := map[string][]byte{
		"alpha": []byte(secrets["inline secret"]),
		"beta":  []byte(secrets["secret_env"]),
		"gamma": []byte(secrets["secret_file"]),
	}

	// Everything that leaves the gateway, by where it came from.
	outputs := map[string][]byte{}
	runCLI := func(label string, extraEnv []string, args ...string) int {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), extraEnv...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		outputs["hookgate "+label] = out.Bytes()
		if exit, ok := err.(*exec.ExitError); ok {
			return exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0
	}
	if code := runCLI("check", env, "check", "--config", cfgPath); code != 0 {
		t.Fatalf("check: exit %d\n%s", code, outputs["hookgate check"])
	}
	if !bytes.Contains(outputs["hookgate check"], []byte("clones https://***@127.0.0.1:2/x.git")) {
		t.Fatalf("check should name epsilon's url without its credentials:\n%s", outputs["hookgate check"])
	}
	// A config whose variables are unset is an error path of its own.
	if code := runCLI("check without env", nil, "check", "--config", cfgPath); code == 0 {
		t.Fatalf("check without the secret variables passed:\n%s", outputs["hookgate check without env"])
	}

	gw := startGateway(t, bin, cfgPath, addr, env...)
	client := &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	answers := 0
	call := func(method, path string, body []byte, header http.Header) (int, []byte) {
		t.Helper()
		answers++
		req, err := http.NewRequest(method, "http://"+addr+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range header {
			req.Header[k] = vs
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		label := fmt.Sprintf("%s %s (%d)", method, path, resp.StatusCode)
		for k, vs := range resp.Header {
			raw = fmt.Appendf(raw, "\n%s: %s", k, strings.Join(vs, ", "))
		}
		outputs[label] = append(outputs[label], raw...)
		return resp.StatusCode, raw
	}

	// Deliveries: good, badly signed, and one that carries credentials in its headers.
	head := testkit.CheckoutHead(t, alpha)
	pushBody := testkit.Push(t, "refs/heads/main", head, head, "")
	ping := testkit.Payload(t, "github/ping.json")
	type delivery struct {
		hook, event string
		body        []byte
		key         []byte            // signs through forge.SetDeliveryHeaders; nil: unsigned
		sig         map[string]string // then set as given; "" deletes
		extra       map[string]string
		want        int
	}
	sha1Sig := func(body, key []byte) string {
		m := hmac.New(sha1.New, key)
		m.Write(body)
		return "sha1=" + hex.EncodeToString(m.Sum(nil))
	}
	var deliveries []delivery
	for _, hook := range []string{"alpha", "beta", "gamma"} {
		key := hookSecret[hook]
		other := hookSecret[map[string]string{"alpha": "beta", "beta": "gamma", "gamma": "alpha"}[hook]]
		deliveries = append(deliveries,
			delivery{hook: hook, event: "ping", body: ping, key: key, want: 200},
			delivery{hook: hook, event: "push", body: pushBody, key: key, want: 202},
			delivery{hook: hook, event: "push", body: pushBody, key: key, sig: map[string]string{"X-Hub-Signature-256": "", "X-Hub-Signature": sha1Sig(pushBody, key)}, want: 202},
			delivery{hook: hook, event: "push", body: pushBody, key: other, want: 401},
			delivery{hook: hook, event: "push", body: pushBody, key: key, sig: map[string]string{"X-Hub-Signature-256": "sha256=" + strings.Repeat("ab", 32)}, want: 401},
			delivery{hook: hook, event: "push", body: pushBody, key: key, sig: map[string]string{"X-Hub-Signature-256": ""}, want: 401},
			delivery{hook: hook, event: "push", body: []byte("{not json"), key: key, want: 400},
			// Credentials a proxy or a confused client might attach: never recorded.
			delivery{hook: hook, event: "push", body: pushBody, key: key,
				extra: map[string]string{"Authorization": "Bearer " + admin, "Cookie": "token=" + admin, "Proxy-Authorization": "Basic " + admin}, want: 202},
		)
	}
	deliveries = append(deliveries, delivery{hook: "nope", event: "push", body: pushBody, want: 404})
	gitlabPush := testkit.Payload(t, "gitlab/push.json")
	for _, token := range []struct {
		value string
		want  int
	}{{secrets["gitlab token"], 200}, {secrets["gitlab token"][:31], 401}, {"", 401}} {
		d := delivery{hook: "delta", body: gitlabPush, extra: map[string]string{"X-Gitlab-Event": "Push Hook"}, want: token.want}
		if token.value != "" {
			d.extra["X-Gitlab-Token"] = token.value
		}
		deliveries = append(deliveries, d)
	}
	for i, d := range deliveries {
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		guid := fmt.Sprintf("secrets-%d", i)
		if d.key != nil {
			forge.SetDeliveryHeaders(h, forge.ProviderGitHub, d.event, guid, d.body, d.key)
		} else {
			if d.event != "" {
				h.Set("X-GitHub-Event", d.event)
			}
			h.Set("X-GitHub-Delivery", guid)
		}
		for k, v := range d.sig {
			if v == "" {
				h.Del(k)
			} else {
				h.Set(k, v)
			}
		}
		for k, v := range d.extra {
			h.Set(k, v)
		}
		if code, body := call(http.MethodPost, "/hooks/"+d.hook, d.body, h); code != d.want {
			t.Fatalf("delivery %d to %s: %d, want %d: %s", i, d.hook, code, d.want, body)
		}
	}
	if code := runCLI("send alpha", env, "send", "alpha", "--config", cfgPath); code != 0 {
		t.Fatalf("send alpha: exit %d\n%s", code, outputs["hookgate send alpha"])
	}
	if code := runCLI("send beta ping", env, "send", "beta", "--event", "ping", "--config", cfgPath); code != 0 {
		t.Fatalf("send beta ping: exit %d\n%s", code, outputs["hookgate send beta ping"])
	}
	if code := runCLI("send delta", env, "send", "delta", "--config", cfgPath); code != 0 {
		t.Fatalf("send delta: exit %d\n%s", code, outputs["hookgate send delta"])
	}
	if code := runCLI("send gamma", env, "send", "gamma", "--config", cfgPath); code == 0 {
		t.Fatalf("send gamma reached an unreachable origin?\n%s", outputs["hookgate send gamma"])
	}

	st, err := store.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	drained := func() {
		t.Helper()
		// Every unfinished status, whatever the node: this store is not the gateway's node,
		// so QueuedRepos (this node's queue) would see nothing queued at all.
		testkit.Eventually(t, 60*time.Second, "every deploy to finish", func() bool {
			for _, status := range []string{store.DeployQueued, store.DeployWaiting, store.DeployRunning, store.DeployVerifying} {
				r, err := st.ListDeploys(context.Background(), store.DeployFilter{Status: status, Page: store.Page{Limit: 1}})
				if err != nil {
					t.Fatal(err)
				}
				if len(r) > 0 {
					return false
				}
			}
			return true
		})
	}
	drained()
	// Manual deploys through the API and the page, then the history of all of it.
	auth := http.Header{"Authorization": {"Bearer " + admin}}
	basic := func() http.Header {
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.SetBasicAuth("operator", admin)
		return req.Header
	}()
	for _, repo := range []string{"alpha", "beta", "gamma", "delta", "epsilon", "nope"} {
		call(http.MethodPost, "/api/v1/repos/"+repo+"/deploy", nil, auth)
		call(http.MethodPost, "/repos/"+repo+"/deploy", nil, basic)
	}
	drained()

	statuses := map[string]int{}
	dps, err := st.ListDeploys(context.Background(), store.DeployFilter{Page: store.Page{Limit: store.MaxLimit}})
	if err != nil {
		t.Fatal(err)
	}
	for _, dp := range dps {
		statuses[dp.Repo+" "+dp.Status]++
	}
	if statuses["alpha succeeded"] == 0 || statuses["beta failed"] == 0 || statuses["gamma failed"] == 0 || statuses["epsilon failed"] == 0 {
		t.Fatalf("want alpha's deploys to succeed and beta's, gamma's and epsilon's to fail: %v", statuses)
	}
	deliveryRows, err := st.ListDeliveries(context.Background(), store.DeliveryFilter{Page: store.Page{Limit: store.MaxLimit}})
	if err != nil {
		t.Fatal(err)
	}

	for _, path := range []string{
		"/api/v1/deliveries", "/api/v1/deliveries?limit=2", "/api/v1/deliveries?repo=gamma&status=failed",
		"/api/v1/deliveries?signature=invalid", "/api/v1/deliveries?limit=abc", "/api/v1/deliveries/999999",
		"/api/v1/deploys", "/api/v1/deploys?status=failed", "/api/v1/deploys?trigger=manual", "/api/v1/deploys/999999",
		"/api/v1/repos", "/metrics",
	} {
		code, body := call(http.MethodGet, path, nil, auth)
		if (path == "/api/v1/repos" || path == "/metrics" || path == "/api/v1/deliveries") && code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, code, body)
		}
	}
	for _, path := range []string{"/", "/?repo=beta", "/?status=failed", "/?status=rejected", "/repos", "/static/style.css", "/static/live.js", "/deliveries/999999", "/deploys/999999"} {
		call(http.MethodGet, path, nil, basic)
	}
	for _, d := range deliveryRows {
		call(http.MethodGet, fmt.Sprintf("/api/v1/deliveries/%d", d.ID), nil, auth)
		call(http.MethodGet, fmt.Sprintf("/deliveries/%d", d.ID), nil, basic)
	}
	for _, dp := range dps {
		call(http.MethodGet, fmt.Sprintf("/api/v1/deploys/%d", dp.ID), nil, auth)
		call(http.MethodGet, fmt.Sprintf("/deploys/%d", dp.ID), nil, basic)
	}
	// Wrong and missing credentials, and the open routes.
	call(http.MethodGet, "/api/v1/deliveries", nil, http.Header{"Authorization": {"Bearer " + admin[:16]}})
	call(http.MethodGet, "/api/v1/repos", nil, nil)
	call(http.MethodGet, "/", nil, http.Header{"Authorization": {"Bearer " + admin}})
	call(http.MethodGet, "/healthz", nil, nil)
	call(http.MethodGet, "/no/such/route", nil, nil)
	if code, body := call(http.MethodGet, "/api/v1/deploys?repo=gamma&status=failed", nil, auth); code != 200 || !bytes.Contains(body, []byte("127.0.0.1:1")) {
		t.Fatalf("gamma's failed deploy should say why (its url), without the token: %d %s", code, body)
	}
	if code, body := call(http.MethodGet, "/api/v1/deploys?repo=epsilon&status=failed", nil, auth); code != 200 || !bytes.Contains(body, []byte("127.0.0.1:2")) {
		t.Fatalf("epsilon's failed deploy should say why (its url), without the password: %d %s", code, body)
	}

	if err := gw.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("gateway exited with %v\n%s", err, gw.logs.String())
	}
	outputs["gateway log"] = []byte(gw.logs.String())
	files, err := filepath.Glob(dbPath + "*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no database files: %v", err)
	}
	// A live copy of the files too: after a clean stop the WAL is folded in and removed.
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		outputs["database file "+filepath.Base(f)] = b
	}
	for _, repo := range []string{"alpha", "beta"} {
		b, err := os.ReadFile(filepath.Join(dir, "env-"+repo+".txt"))
		if err != nil {
			t.Fatalf("the deploy command of %s did not write its environment: %v", repo, err)
		}
		outputs["environment of "+repo+"'s deploy command"] = b
		for _, name := range []string{betaVar, adminVar, tokenVar} {
			if regexp.MustCompile(`(?m)^` + name + `=`).Match(b) {
				t.Errorf("%s's deploy command got the secret variable %s", repo, name)
			}
		}
		if !bytes.Contains(b, []byte("HOOKGATE_COMMIT=")) {
			t.Errorf("%s's deploy environment looks wrong:\n%s", repo, b)
		}
	}

	labels := make([]string, 0, len(outputs))
	total := 0
	for label, b := range outputs {
		labels = append(labels, label)
		total += len(b)
	}
	sort.Strings(labels)
	for _, label := range labels {
		for what, value := range secrets {
			if bytes.Contains(outputs[label], []byte(value)) {
				t.Errorf("the %s (%s…) appears in %s", what, value[:6], label)
			}
		}
	}
	t.Logf("searched %d outputs (%d bytes: log, %d HTTP answers, CLI output, %d database files, deploy environments) for %d secrets",
		len(outputs), total, answers, len(files), len(secrets))
	if t.Failed() {
		dump, _ := json.MarshalIndent(labels, "", "  ")
		t.Logf("outputs searched: %s", dump)
	}
}
