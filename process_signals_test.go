package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

// traffic posts signed pushes to one hook from several clients until stop is closed, and
// counts the answers. It never calls t.Fatal: it runs off the test's goroutine.
type traffic struct {
	mu     sync.Mutex
	sent   int
	non2xx []string
	wg     sync.WaitGroup
}

func startTraffic(addr, hook string, body, secret []byte, stop <-chan struct{}) *traffic {
	tr := &traffic{}
	for c := range 4 {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/hooks/"+hook, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				forge.SetDeliveryHeaders(req.Header, forge.ProviderGitHub, "push", fmt.Sprintf("traffic-%d-%d", c, i), body, secret)
				resp, err := http.DefaultClient.Do(req)
				tr.mu.Lock()
				tr.sent++
				switch {
				case err != nil:
					tr.non2xx = append(tr.non2xx, err.Error())
				case resp.StatusCode/100 != 2:
					tr.non2xx = append(tr.non2xx, resp.Status)
				}
				tr.mu.Unlock()
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	return tr
}

// TestReload drives the real binary through configuration reloads by SIGHUP and by
// POST /api/v1/reload while deliveries keep arriving:
//   - a removed repository stops taking deliveries (404) but finishes its running deploy;
//   - an added repository takes deliveries and deploys; a new admin token replaces the old;
//   - notification targets added by the reload hear of a failure and then a recovery;
//   - an invalid file is refused, by signal (logged) and by the API (422), and the running
//     configuration stays;
//   - no delivery in flight across the reloads is refused or lost.
func TestReload(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	origin := testkit.NewOrigin(t)
	head := origin.Commit(map[string]string{"app.txt": "v1\n"}, "v1")
	dir := t.TempDir()
	addr := freeAddr(t)
	gate := filepath.Join(dir, "gate")
	const (
		siteSecret, keepSecret, apiSecret = "site-s3cret-aaaa", "keep-s3cret-bbbb", "api-s3cret-cccc"
		token1, token2                    = "t0ken-one-dddd", "t0ken-two-eeee"
		notifySecret                      = "n0tify-s3cret-ffff"
	)
	rcv, rcvURL := newReceiver(t, []byte(notifySecret))
	repo := func(name, secret, commands string) string {
		return fmt.Sprintf("\n[repos.%s]\nsecret = %q\npath = %q\nurl = %q\ncommands = [%s]\ntimeout = \"1m\"\n",
			name, secret, name, origin.Bare, commands)
	}
	serverTable := func(token string) string {
		return fmt.Sprintf("[server]\nlisten = %q\ndatabase = \"hookgate.db\"\nadmin_token = %q\n", addr, token)
	}
	notifyTable := fmt.Sprintf("\n[[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = %q\nsecret_env = \"TEST_NOTIFY_SECRET\"\n", rcvURL)
	cfgPath := filepath.Join(dir, "config.toml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(serverTable(token1) +
		repo("site", siteSecret, fmt.Sprintf(`"while [ ! -e %s ]; do sleep 0.02; done"`, gate)) +
		repo("keep", keepSecret, `"true"`))
	g := startGateway(t, bin, cfgPath, addr, "TEST_NOTIFY_SECRET="+notifySecret)
	base := "http://" + addr
	reloads := func() int { return strings.Count(g.logs.String(), "configuration reloaded") }
	refusals := func() int { return strings.Count(g.logs.String(), "configuration reload refused") }
	hup := func() {
		t.Helper()
		if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	deployStatus := func(token string, id int64) string {
		var dp struct{ Status string }
		api(t, http.MethodGet, fmt.Sprintf("%s/api/v1/deploys/%d", base, id), token, &dp)
		return dp.Status
	}
	push := testkit.Push(t, "refs/heads/main", strings.Repeat("0", 39)+"1", head, "")

	// A deploy of site runs (held by the gate) when site is removed.
	running := deliver(t, addr, "site", "push", "site-1", push, []byte(siteSecret))
	if running.HTTPStatus != http.StatusAccepted {
		t.Fatalf("push to site: %+v", running)
	}
	testkit.Eventually(t, 60*time.Second, "site's deploy to run", func() bool {
		return deployStatus(token1, running.DeployID) == store.DeployRunning
	})

	stop := make(chan struct{})
	tr := startTraffic(addr, "keep", push, []byte(keepSecret), stop)

	// Reload 1, by SIGHUP: site removed, api added with a failing deploy, a notification
	// target, a new admin token.
	write(serverTable(token2) + repo("keep", keepSecret, `"true"`) + repo("api", apiSecret, `"exit 7"`) + notifyTable)
	hup()
	testkit.Eventually(t, 30*time.Second, "the SIGHUP reload", func() bool { return reloads() == 1 })

	if a := deliver(t, addr, "site", "push", "site-2", push, []byte(siteSecret)); a.HTTPStatus != http.StatusNotFound {
		t.Fatalf("a removed repository's hook answered %d, want 404", a.HTTPStatus)
	}
	if code := api(t, http.MethodGet, base+"/api/v1/repos", token1, nil); code != http.StatusUnauthorized {
		t.Fatalf("the old admin token got %d after the reload, want 401", code)
	}
	if st := deployStatus(token2, running.DeployID); st != store.DeployRunning {
		t.Fatalf("site's running deploy is %s after site was removed; it must finish", st)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 60*time.Second, "the removed repository's deploy to finish", func() bool {
		return deployStatus(token2, running.DeployID) == store.DeploySucceeded
	})

	failing := deliver(t, addr, "api", "push", "api-1", push, []byte(apiSecret))
	if failing.HTTPStatus != http.StatusAccepted {
		t.Fatalf("push to the added repository: %+v", failing)
	}
	m := rcv.next(t)
	if m.Event != "deploy.failure" || m.Repo != "api" || m.Deploy.ID != failing.DeployID || !strings.Contains(m.Deploy.Error, "exit status 7") {
		t.Fatalf("failure notification %+v", m)
	}

	// An invalid file, by SIGHUP then by the API: refused, the running configuration kept.
	write(serverTable(token2) + repo("keep", keepSecret, `"true"`) + repo("api", apiSecret, `"true"`) + notifyTable + "\n[server2]\nlisten = \"x\"\n")
	hup()
	testkit.Eventually(t, 30*time.Second, "the refused SIGHUP reload to be logged", func() bool { return refusals() == 1 })
	var refused struct {
		Error struct{ Code, Message string }
	}
	if code := api(t, http.MethodPost, base+"/api/v1/reload", token2, &refused); code != http.StatusUnprocessableEntity ||
		refused.Error.Code != "invalid_config" || !strings.Contains(refused.Error.Message, `unknown key "server2`) {
		t.Fatalf("POST /api/v1/reload with an invalid file: %d %+v", code, refused)
	}
	second := deliver(t, addr, "api", "push", "api-2", push, []byte(apiSecret))
	if second.HTTPStatus != http.StatusAccepted {
		t.Fatalf("after a refused reload the running configuration must stay: api answered %d", second.HTTPStatus)
	}
	testkit.Eventually(t, 60*time.Second, "api's second deploy (old commands) to fail", func() bool {
		return deployStatus(token2, second.DeployID) == store.DeployFailed
	})
	if m := rcv.next(t); m.Event != "deploy.failure" {
		t.Fatalf("second notification %+v", m)
	}

	// Reload 2, by the API: api's commands fixed; its next deploy recovers.
	write(serverTable(token2) + repo("keep", keepSecret, `"true"`) + repo("api", apiSecret, `"true"`) + notifyTable)
	var ok struct {
		Reloaded bool
		Changes  server.ReloadReport
	}
	if code := api(t, http.MethodPost, base+"/api/v1/reload", token2, &ok); code != http.StatusOK || !ok.Reloaded ||
		fmt.Sprint(ok.Changes.Changed) != "[api]" || len(ok.Changes.Added)+len(ok.Changes.Removed) != 0 {
		t.Fatalf("POST /api/v1/reload: %d %+v", code, ok)
	}
	fixed := deliver(t, addr, "api", "push", "api-3", push, []byte(apiSecret))
	m = rcv.next(t)
	if m.Event != "deploy.recovery" || m.Repo != "api" || m.Deploy.ID != fixed.DeployID || m.Deploy.Status != store.DeploySucceeded {
		t.Fatalf("recovery notification %+v", m)
	}
	var listed struct {
		Notifications []struct{ Target, Event, Status string }
	}
	// The notifier records a notification once the receiver has answered it.
	testkit.Eventually(t, 30*time.Second, "the recovery notification to be recorded", func() bool {
		api(t, http.MethodGet, base+"/api/v1/notifications?repo=api", token2, &listed)
		return len(listed.Notifications) == 3
	})
	if len(listed.Notifications) != 3 || listed.Notifications[0].Event != "recovery" || listed.Notifications[0].Status != "sent" ||
		listed.Notifications[0].Target != "ops" {
		t.Fatalf("recorded notifications %+v", listed.Notifications)
	}
	var one struct {
		Notifications []struct {
			DeployID int64 `json:"deploy_id"`
		}
	}
	api(t, http.MethodGet, fmt.Sprintf("%s/api/v1/notifications?deploy_id=%d", base, failing.DeployID), token2, &one)
	if len(one.Notifications) != 1 || one.Notifications[0].DeployID != failing.DeployID {
		t.Fatalf("notifications about deploy %d: %+v", failing.DeployID, one.Notifications)
	}
	// The deploy page says who was told.
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/deploys/%d", base, failing.DeployID), nil)
	req.SetBasicAuth("admin", token2)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"<h2>Notifications</h2>", ">ops <", ">failure<", ">sent<"} {
		if !strings.Contains(string(html), want) {
			t.Fatalf("deploy page %d lacks %q:\n%s", failing.DeployID, want, html)
		}
	}

	close(stop)
	tr.wg.Wait()
	if err := g.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("gateway exited with %v\n%s", err, g.logs.String())
	}
	if len(tr.non2xx) > 0 || tr.sent == 0 {
		t.Fatalf("of %d deliveries sent across the reloads, %d were not answered 2xx: %v", tr.sent, len(tr.non2xx), tr.non2xx[:min(5, len(tr.non2xx))])
	}
	st, err := store.Open(context.Background(), filepath.Join(dir, "hookgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recorded := 0
	for page := (store.Page{Limit: store.MaxLimit}); ; {
		rows, err := st.ListDeliveries(context.Background(), store.DeliveryFilter{Repo: "keep", Page: page})
		if err != nil {
			t.Fatal(err)
		}
		recorded += len(rows)
		if len(rows) < page.Limit {
			break
		}
		page.Before = rows[len(rows)-1].ID
	}
	if recorded != tr.sent {
		t.Fatalf("%d deliveries answered 2xx across the reloads, %d recorded", tr.sent, recorded)
	}
	t.Logf("%d deliveries across 2 reloads and 2 refused ones, all 2xx and recorded", tr.sent)
	logs := g.logs.String()
	for _, secret := range []string{siteSecret, keepSecret, apiSecret, token1, token2, notifySecret} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains a secret")
		}
	}
}
