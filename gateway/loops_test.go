package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookgate/hookgate/config"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

const minimalRepo = "[repos.a]\nsecret = \"x\"\npath = \"/x\"\n"

// TestPruneUnsignedWithRetentionOff: with retention off (the default), the gateway's
// pruning loop still deletes deliveries without a valid signature older than the default
// unsigned_retention, and keeps signed ones however old.
func TestPruneUnsignedWithRetentionOff(t *testing.T) {
	cfg, err := config.Load(writeConfig(t, minimalRepo))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "hookgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	record := func(age time.Duration, guid, signature, status string) int64 {
		t.Helper()
		st.SetNow(func() time.Time { return now.Add(-age) })
		d := &store.Delivery{GUID: guid, Repo: "a", Event: "push", Signature: signature, Status: status, HTTPStatus: 401}
		if err := st.RecordDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		return d.ID
	}
	oldUnsigned := record(8*24*time.Hour, "old-unsigned", store.SignatureInvalid, store.DeliveryRejected)
	oldSigned := record(90*24*time.Hour, "old-signed", store.SignatureValid, store.DeliveryIgnored)
	recentUnsigned := record(6*24*time.Hour, "recent-unsigned", store.SignatureMissing, store.DeliveryRejected)

	loop, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		prune(loop, st, DefaultPruneEvery, func() retention {
			return retention{all: cfg.Server.KeepFor(), unsigned: cfg.Server.KeepUnsignedFor()}
		}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	defer func() { stop(); <-done }()
	testkit.Eventually(t, 10*time.Second, "the old unsigned delivery to be pruned", func() bool {
		_, err := st.Delivery(ctx, oldUnsigned)
		return errors.Is(err, store.ErrNotFound)
	})
	for _, id := range []int64{oldSigned, recentUnsigned} {
		if _, err := st.Delivery(ctx, id); err != nil {
			t.Errorf("delivery %d pruned: %v", id, err)
		}
	}
}
