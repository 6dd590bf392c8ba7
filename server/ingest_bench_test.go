package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

// ingestDeployer stands in for the workers: accepted pushes join the queued deploy in the
// store as they would, and nothing runs it.
type ingestDeployer struct{ notified atomic.Int64 }

func (d *ingestDeployer) Notify(string)        { d.notified.Add(1) }
func (d *ingestDeployer) Running(string) int64 { return 0 }

// BenchmarkIngest sends signed 7 KB GitHub push deliveries through the real router: size-
// limited read, HMAC, parse, decide, and the store's group commit into a real SQLite file,
// each answered only after its commit. 64 goroutines on 2 CPUs, as the load test's 64
// connections. "hmac-only" is the floor in process: a bare handler that only checks the HMAC.
//
//	go test -run '^$' -bench Ingest -benchtime 5s -count 3 ./server/
func BenchmarkIngest(b *testing.B) {
	secret := []byte("bench-secret")
	after := "1f9c2a3b4d5e6f708192a3b4c5d6e7f8091a2b3c"
	for _, bc := range []struct {
		name, ref string
		status    int
	}{
		{"accepted", "refs/heads/main", http.StatusAccepted},
		{"ignored", "refs/heads/feature", http.StatusOK},
	} {
		b.Run(bc.name, func(b *testing.B) {
			body := testkit.Push(b, bc.ref, strings.Repeat("0", 39)+"1", after, "acme/app")
			st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "hookgate.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			dep := &ingestDeployer{}
			st.OnQueued(dep.Notify) // the store tells of each deploy queued
			srv, err := server.New(server.Options{
				Hooks:   []server.Hook{{Name: "bench", Secret: secret, Branch: "main"}},
				MaxBody: 25 << 20,
				Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
			}, st, dep)
			if err != nil {
				b.Fatal(err)
			}
			runIngest(b, srv.Handler(), body, secret, bc.status)
			if bc.status == http.StatusAccepted && dep.notified.Load() == 0 {
				b.Fatal("no deploy was queued")
			}
		})
	}
	b.Run("hmac-only", func(b *testing.B) {
		body := testkit.Push(b, "refs/heads/main", strings.Repeat("0", 39)+"1", after, "acme/app")
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 25<<20))
			if err != nil || forge.VerifySignature(r.Header, raw, secret).Result != store.SignatureValid {
				http.Error(w, "signature", http.StatusUnauthorized)
				return
			}
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, `{"status":"accepted"}`)
		})
		runIngest(b, h, body, secret, http.StatusAccepted)
	})
}

// runIngest posts body, signed, with a distinct X-GitHub-Delivery each time, from 64
// goroutines, and reports deliveries per second.
func runIngest(b *testing.B, h http.Handler, body, secret []byte, want int) {
	sig := forge.Sign(body, secret)
	var seq atomic.Int64
	b.SetBytes(int64(len(body)))
	b.SetParallelism(32) // × GOMAXPROCS (2 here): 64 deliveries in flight
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/hooks/bench", bytes.NewReader(body))
			req.RemoteAddr = "140.82.115.1:40000"
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("User-Agent", "GitHub-Hookshot/7b6c1ad")
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Hook-ID", "492039781")
			req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("0b5e1dad-0000-4000-8000-%012x", seq.Add(1)))
			req.Header.Set("X-Hub-Signature-256", sig)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != want {
				b.Fatalf("status %d, want %d: %s", rec.Code, want, rec.Body.String())
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
