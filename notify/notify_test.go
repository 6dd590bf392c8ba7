package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// receiver is a real HTTP endpoint on loopback that records what it is sent and answers
// with the statuses it is told to, in order (then 200).
type receiver struct {
	mu       sync.Mutex
	statuses []int
	got      []received
	release  chan struct{} // when set, requests wait for it
	srv      *httptest.Server
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.release != nil {
			<-r.release
		}
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{req.Header.Clone(), body})
		status := http.StatusOK
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

type env struct {
	store *store.Store
	seq   int
}

func newEnv(t *testing.T) *env {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "n.db"), store.WithNode("web1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &env{store: st}
}

// deploy records a finished deploy of repo with status and returns it as the worker would
// hand it over.
func (e *env) deploy(t *testing.T, repo, status string) store.Deploy {
	t.Helper()
	ctx := context.Background()
	e.seq++
	d := &store.Delivery{GUID: fmt.Sprint("g", e.seq), Repo: repo, Event: "push", Signature: "valid", Status: store.DeliveryAccepted, HTTPStatus: 202}
	if err := e.store.RecordDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	dp, err := e.store.ClaimDeploy(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	res := store.Result{Status: status, ToCommit: strings.Repeat("ab", 20)}
	if status == store.DeployFailed {
		res.Error = "command 1 of 1 (make) failed: exit status 2"
	}
	if err := e.store.FinishDeploy(ctx, dp.ID, res); err != nil {
		t.Fatal(err)
	}
	full, err := e.store.Deploy(ctx, dp.ID)
	if err != nil {
		t.Fatal(err)
	}
	return full
}

func (e *env) notifications(t *testing.T, n int) []store.Notification {
	t.Helper()
	var out []store.Notification
	testkit.Eventually(t, 20*time.Second, fmt.Sprintf("%d notifications to be recorded", n), func() bool {
		var err error
		out, err = e.store.Notifications(context.Background(), "", 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(out) >= n
	})
	if len(out) != n {
		t.Fatalf("%d notifications recorded, want %d: %+v", len(out), n, out)
	}
	return out
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestFailureAndRecoveryAreSignedAndRecorded(t *testing.T) {
	e := newEnv(t)
	hook := newReceiver(t)
	slack := newReceiver(t)
	secret := []byte("receiver-secret")
	n := New(e.store, []Target{{Name: "ops", Kind: KindWebhook, URL: hook.srv.URL, Secret: secret}},
		map[string][]Target{"site": {{Name: "site-slack", Kind: KindSlack, URL: slack.srv.URL + "/services/T0/B0/XXXX"}}},
		Options{Logger: quiet()})
	n.Start()

	ok := e.deploy(t, "site", store.DeploySucceeded)
	n.DeployFinished(ok) // success after nothing: no news
	failed := e.deploy(t, "site", store.DeployFailed)
	n.DeployFinished(failed)
	recovered := e.deploy(t, "site", store.DeploySucceeded)
	n.DeployFinished(recovered)
	again := e.deploy(t, "site", store.DeploySucceeded)
	n.DeployFinished(again) // success after success: no news
	n.Stop()

	recs := e.notifications(t, 4)
	if hook.count() != 2 || slack.count() != 2 {
		t.Fatalf("webhook got %d, slack %d; want 2 each", hook.count(), slack.count())
	}
	var events []string
	for i, r := range hook.got {
		if got := r.header.Get("X-Hookgate-Signature-256"); got != Sign(r.body, secret) {
			t.Fatalf("webhook %d signature %q does not verify", i, got)
		}
		var m Message
		if err := json.Unmarshal(r.body, &m); err != nil {
			t.Fatal(err)
		}
		events = append(events, m.Event)
		if m.Repo != "site" || m.Deploy.ToCommit == "" || m.Deploy.Node != "web1" || r.header.Get("X-Hookgate-Event") != m.Event {
			t.Fatalf("webhook body %+v", m)
		}
	}
	if strings.Join(events, ",") != "deploy.failure,deploy.recovery" {
		t.Fatalf("events %v", events)
	}
	if !strings.Contains(string(slack.got[0].body), "site on web1 FAILED") || !strings.Contains(string(slack.got[1].body), "recovered on web1") {
		t.Fatalf("slack bodies %s / %s", slack.got[0].body, slack.got[1].body)
	}
	for _, r := range recs {
		if r.Status != store.NotificationSent || r.Attempts != 1 || r.HTTPStatus != 200 || strings.Contains(r.Target, "http") {
			t.Fatalf("recorded %+v", r)
		}
	}
	if recs[0].DeployID != recovered.ID || recs[3].DeployID != failed.ID {
		t.Fatalf("recorded deploys %d..%d", recs[3].DeployID, recs[0].DeployID)
	}
}

func TestRetriesAndFailures(t *testing.T) {
	e := newEnv(t)
	flaky := newReceiver(t, http.StatusServiceUnavailable, http.StatusBadGateway)
	refusing := newReceiver(t, http.StatusBadRequest)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + ln.Addr().String() + "/hook?token=sekrit-token-value"
	ln.Close()
	n := New(e.store, []Target{
		{Name: "flaky", Kind: KindWebhook, URL: flaky.srv.URL},
		{Name: "refusing", Kind: KindWebhook, URL: refusing.srv.URL},
		{Name: "dead", Kind: KindWebhook, URL: deadURL},
		{Name: "recovery-only", Kind: KindWebhook, URL: flaky.srv.URL, Events: []string{EventRecovery}},
	}, nil, Options{Logger: quiet(), Backoff: 10 * time.Millisecond, Attempts: 3})
	n.Start()
	n.DeployFinished(e.deploy(t, "site", store.DeployFailed))
	n.Stop()

	byTarget := map[string]store.Notification{}
	for _, r := range e.notifications(t, 3) {
		byTarget[r.Target] = r
	}
	if r := byTarget["flaky"]; r.Status != store.NotificationSent || r.Attempts != 3 {
		t.Errorf("flaky target: %+v (want sent on the 3rd attempt)", r)
	}
	if r := byTarget["refusing"]; r.Status != store.NotificationFailed || r.Attempts != 1 || r.HTTPStatus != 400 {
		t.Errorf("a 400 must not be retried: %+v", r)
	}
	if r := byTarget["dead"]; r.Status != store.NotificationFailed || r.Attempts != 3 || r.Error == "" ||
		strings.Contains(r.Error, "sekrit") || strings.Contains(r.Error, "/hook?") {
		t.Errorf("dead target: %+v (error must not carry the URL)", r)
	}
}

// TestNeverBlocksADeploy: with the receiver stuck and the queue full, DeployFinished
// returns at once and records the overflow as dropped.
func TestNeverBlocksADeploy(t *testing.T) {
	e := newEnv(t)
	stuck := newReceiver(t)
	stuck.release = make(chan struct{})
	n := New(e.store, []Target{{Name: "stuck", Kind: KindWebhook, URL: stuck.srv.URL}}, nil,
		Options{Logger: quiet(), Queue: 1, Attempts: 1})
	n.Start()
	var deploys []store.Deploy
	for range 4 {
		deploys = append(deploys, e.deploy(t, "site", store.DeployFailed))
	}
	done := make(chan struct{})
	go func() {
		for _, dp := range deploys {
			n.DeployFinished(dp)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("DeployFinished blocked while the receiver was stuck")
	}
	close(stuck.release)
	n.Stop()
	recs := e.notifications(t, 4)
	dropped := 0
	for _, r := range recs {
		if r.Status == store.NotificationDropped {
			dropped++
		}
	}
	if dropped == 0 || stuck.count()+dropped != 4 {
		t.Fatalf("sent %d, dropped %d of 4", stuck.count(), dropped)
	}
}

// TestASkippedDeployIsNoNews: a skipped deploy (paths) after a failure is neither a
// failure nor a recovery; the success that follows it is the recovery.
func TestASkippedDeployIsNoNews(t *testing.T) {
	e := newEnv(t)
	hook := newReceiver(t)
	n := New(e.store, []Target{{Name: "ops", Kind: KindWebhook, URL: hook.srv.URL}}, nil, Options{Logger: quiet()})
	n.Start()
	n.DeployFinished(e.deploy(t, "site", store.DeployFailed))
	n.DeployFinished(e.deploy(t, "site", store.DeploySkipped))
	recovered := e.deploy(t, "site", store.DeploySucceeded)
	n.DeployFinished(recovered)
	n.Stop()
	recs := e.notifications(t, 2)
	if recs[0].DeployID != recovered.ID || recs[0].Event != EventRecovery || recs[1].Event != EventFailure {
		t.Fatalf("notifications %+v; want the failure, then the recovery of deploy %d", recs, recovered.ID)
	}
}
