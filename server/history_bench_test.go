package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

// benchRows is how many deliveries the history benchmarks run against.
const benchRows = 100_000

var (
	benchOnce  sync.Once
	benchStore *store.Store
	benchDir   string
	benchErr   error
)

// historyStore builds, once per test binary run, a SQLite file holding benchRows
// deliveries over 10 repositories: mostly ignored, some rejected, a fifth accepted into
// deploys that succeed or fail.
func historyStore(b *testing.B) *store.Store {
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "hookgate-bench-")
		if benchErr != nil {
			return
		}
		ctx := context.Background()
		benchStore, benchErr = store.Open(ctx, filepath.Join(benchDir, "history.db"))
		if benchErr != nil {
			return
		}
		const batch = 1000
		for start := 0; start < benchRows && benchErr == nil; start += batch {
			var wg sync.WaitGroup
			errs := make(chan error, batch)
			for i := start; i < start+batch; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- benchStore.RecordDelivery(ctx, benchDelivery(i))
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					benchErr = err
				}
			}
			for r := range 10 {
				repo := fmt.Sprintf("repo-%d", r)
				dp, err := benchStore.ClaimDeploy(ctx, repo)
				if err != nil {
					continue
				}
				status := store.DeploySucceeded
				if (start/batch+r)%4 == 0 {
					status = store.DeployFailed
				}
				benchErr = benchStore.FinishDeploy(ctx, dp.ID, store.Result{Status: status, ToCommit: fmt.Sprintf("%040x", start), Log: "build output\n"})
			}
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchStore
}

func benchDelivery(i int) *store.Delivery {
	after := fmt.Sprintf("%040x", 0x5eed0000+i)
	d := &store.Delivery{
		GUID: fmt.Sprintf("bench-%d", i), Repo: fmt.Sprintf("repo-%d", i%10), Event: "push",
		Ref: "refs/heads/main", Before: after, After: after, Commit: after[:7],
		Signature: store.SignatureValid, SignatureAlg: "sha256", Status: store.DeliveryIgnored,
		HTTPStatus: 200, Reason: "push to refs/heads/feature", RemoteAddr: "140.82.115.1",
		UserAgent: "GitHub-Hookshot/abc", ContentType: "application/json", BodySize: 7000,
		Headers: map[string]string{"X-Github-Event": "push"}, FullName: "acme/app",
		RepoURL: "https://github.com/acme/app", Pusher: "octocat", Message: "Fix the thing",
	}
	switch {
	case i%10 == 3:
		d.Signature, d.Status, d.HTTPStatus, d.Reason = store.SignatureInvalid, store.DeliveryRejected, 401, "signature does not match"
	case i%5 == 0:
		d.Status, d.HTTPStatus, d.Reason = store.DeliveryAccepted, 202, "queued for deploy"
	case i%7 == 0:
		d.Event = "ping"
	}
	return d
}

// BenchmarkHistory serves the first and a filtered page of the API and of the HTML
// history, in process through the real router, with benchRows deliveries stored.
func BenchmarkHistory(b *testing.B) {
	historyStore(b) // fills benchDir's history.db once
	var rs []gatewaytest.Repo
	for r := range 10 {
		rs = append(rs, gatewaytest.Repo{Name: fmt.Sprintf("repo-%d", r), Secret: "x", Path: b.TempDir()})
	}
	gw := startTestGateway(b, nil, []gatewaytest.Option{gatewaytest.Repos(rs...), gatewaytest.Database(filepath.Join(benchDir, "history.db"))},
		func(o *server.Options) {
			o.MaxBody = 1 << 20
			for i := range o.Hooks {
				o.Hooks[i].Repository = ""
			}
		})
	srv := gw.G.Server()
	h := srv.Handler()
	for _, bc := range []struct{ name, path string }{
		{"api/first-page", "/api/v1/deliveries"},
		{"api/filtered", "/api/v1/deliveries?repo=repo-3&status=rejected"},
		{"api/filtered-deploy-status", "/api/v1/deliveries?repo=repo-5&status=failed"},
		{"api/deploys-first-page", "/api/v1/deploys"},
		{"html/first-page", "/"},
		{"html/filtered", "/?repo=repo-3&status=rejected"},
		{"html/filtered-deploy-status", "/?repo=repo-5&status=failed"},
		{"html/deploys-first-page", "/deploys"},
		{"html/deploys-filtered", "/deploys?repo=repo-5&status=failed"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, bc.path, nil)
			req.RemoteAddr = "127.0.0.1:1234"
			// Without admin_token only a loopback Host is answered (the DNS-rebinding
			// guard); httptest's default, example.com, got 403 host_not_allowed.
			req.Host = "localhost"
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", bc.path, rec.Code, rec.Body.String())
				}
			}
		})
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchStore != nil {
		benchStore.Close()
	}
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}
