package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookgate/hookgate/store/storetest"
)

// scaleRows is how many deliveries the history-at-scale benchmarks store.
const scaleRows = 1_000_000

// BenchmarkHistoryScale serves the history's listings from a store holding a million
// deliveries, and opens that store as the gateway does at start-up (migrations, then the
// recovery queries). The HTML page and the API over HTTP with the real binary are measured
// by scripts/historyscale.
//
//	go test -run '^$' -bench HistoryScale -benchtime 200x -count 3 ./store/
func BenchmarkHistoryScale(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "history.db")
	s, err := Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	t0 := time.Now()
	if err := storetest.FillHistory(ctx, s.wdb, scaleRows); err != nil {
		b.Fatal(err)
	}
	if _, err := s.wdb.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	b.Logf("filled %d deliveries in %s", scaleRows, time.Since(t0).Round(time.Millisecond))

	for _, bc := range []struct {
		name string
		f    DeliveryFilter
	}{
		{"deliveries/first-page", DeliveryFilter{}},
		{"deliveries/filtered", DeliveryFilter{Repo: "repo-3", Status: DeliveryRejected}},
		{"deliveries/filtered-deploy-status", DeliveryFilter{Repo: "repo-5", Status: DeployFailed}},
		{"deliveries/event", DeliveryFilter{Event: "ping"}},
		{"deliveries/signature", DeliveryFilter{Signature: SignatureInvalid}},
		{"deliveries/push", DeliveryFilter{Event: "push", Signature: SignatureValid}},
		{"deliveries/older-page", DeliveryFilter{Page: Page{Before: scaleRows / 2}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				ds, err := s.ListDeliveries(ctx, bc.f)
				if err != nil {
					b.Fatal(err)
				}
				if len(ds) != 50 {
					b.Fatalf("%d rows, want 50", len(ds))
				}
			}
		})
	}
	b.Run("deploys/first-page", func(b *testing.B) {
		for b.Loop() {
			dps, err := s.ListDeploys(ctx, DeployFilter{})
			if err != nil {
				b.Fatal(err)
			}
			if len(dps) != 50 {
				b.Fatalf("%d rows, want 50", len(dps))
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			s2, err := Open(ctx, path)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s2.InterruptRunning(ctx, "interrupted"); err != nil {
				b.Fatal(err)
			}
			if _, err := s2.QueuedRepos(ctx); err != nil {
				b.Fatal(err)
			}
			s2.Close()
		}
	})
}
