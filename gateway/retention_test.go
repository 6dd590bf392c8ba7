// retention_test.go owns the retention test through a running gateway.

package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// TestRetentionPrunesThroughServe: the gateway, started on a database holding history
// older than `retention`, prunes it (deliveries, and deploys other than each repository's
// newest and newest succeeded) while it runs, and keeps what is younger. The old rows are
// written through the store with its clock set back, so no test waits for time to pass.
func TestRetentionPrunesThroughServe(t *testing.T) {
	origin := testkit.NewOrigin(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "hookgate.db")
	addr := gatewaytest.FreeAddr(t)
	cfgPath := filepath.Join(dir, "config.toml")
	cfg := fmt.Sprintf(`
[server]
listen = %q
database = %q
retention = "24h"

[repos.site]
secret = "retention-test-secret"
path = %q
commands = ["true"]
`, addr, dbPath, origin.Clone())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	st, err := store.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	record := func(at time.Time, d *store.Delivery) *store.Delivery {
		t.Helper()
		st.SetNow(func() time.Time { return at })
		if err := st.RecordDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	deployed := func(at time.Time, guid string) (*store.Delivery, int64) {
		t.Helper()
		d := record(at, &store.Delivery{GUID: guid, Repo: "site", Event: "push", Ref: "refs/heads/main",
			Signature: store.SignatureValid, Status: store.DeliveryAccepted, HTTPStatus: 202})
		dp, err := st.ClaimDeploy(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		if err := st.FinishDeploy(ctx, dp.ID, store.Result{Status: store.DeploySucceeded}); err != nil {
			t.Fatal(err)
		}
		return d, dp.ID
	}
	old, superseded := deployed(now.Add(-72*time.Hour), "old")
	older, live := deployed(now.Add(-48*time.Hour), "older-but-live")
	recent := record(now.Add(-time.Hour), &store.Delivery{GUID: "recent", Repo: "site", Event: "ping",
		Signature: store.SignatureValid, Status: store.DeliveryIgnored, HTTPStatus: 200})

	gw := gatewaytest.Start(t, cfgPath)
	gone := func(err error) bool { return errors.Is(err, store.ErrNotFound) }
	testkit.Eventually(t, 30*time.Second, "history older than the retention to be pruned", func() bool {
		_, e1 := st.Delivery(ctx, old.ID)
		_, e2 := st.Delivery(ctx, older.ID)
		_, e3 := st.Deploy(ctx, superseded)
		return gone(e1) && gone(e2) && gone(e3)
	})
	if _, err := st.Deploy(ctx, live); err != nil {
		t.Errorf("site's newest deploy was pruned: %v", err)
	}
	if _, err := st.Delivery(ctx, recent.ID); err != nil {
		t.Errorf("a delivery younger than the retention was pruned: %v", err)
	}
	if err := gw.Stop(); err != nil {
		t.Fatalf("gateway exited with %v\n%s", err, gw.Logs.String())
	}
}
