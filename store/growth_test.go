package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRetentionBoundsTheFile runs an hour of synthetic traffic on a simulated clock (5
// deliveries a second with 2 KB payloads, a deploy a minute) with a 10-minute retention
// pruned every simulated minute: once the retention window is full, the database file
// stops growing, because pruned pages are reused.
func TestRetentionBoundsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "growth.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	s.SetNow(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	payload := []byte(`{"padding":"` + strings.Repeat("x", 2000) + `"}`)
	size := func() int64 {
		var total int64
		for _, suffix := range []string{"", "-wal"} {
			if fi, err := os.Stat(path + suffix); err == nil {
				total += fi.Size()
			}
		}
		return total
	}

	const perMinute = 300
	var at20 int64
	for minute := 1; minute <= 60; minute++ {
		var wg sync.WaitGroup
		for i := range perMinute {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := push("site", fmt.Sprintf("m%d-%d", minute, i))
				d.Payload = payload
				if err := s.RecordDelivery(ctx, d); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if dp, err := s.ClaimDeploy(ctx, "site"); err == nil {
			if err := s.FinishDeploy(ctx, dp.ID, Result{Status: DeploySucceeded, Log: strings.Repeat("build output\n", 500)}); err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		now = now.Add(time.Minute)
		cutoff := now.Add(-10 * time.Minute)
		mu.Unlock()
		if _, err := s.Prune(ctx, cutoff); err != nil {
			t.Fatal(err)
		}
		if minute == 20 {
			at20 = size()
		}
	}
	at60 := size()
	t.Logf("database size after 20 simulated minutes %d KiB, after 60 %d KiB (%d deliveries recorded)", at20>>10, at60>>10, 60*perMinute)
	if at60 > at20+at20/4 {
		t.Fatalf("the file kept growing under retention: %d KiB at 20 min, %d KiB at 60 min", at20>>10, at60>>10)
	}
	rows, err := s.ListDeliveries(ctx, DeliveryFilter{Page: Page{Limit: MaxLimit}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 || rows[len(rows)-1].ReceivedAt.Before(now.Add(-11*time.Minute)) {
		t.Fatal("deliveries older than the retention were kept")
	}
}
