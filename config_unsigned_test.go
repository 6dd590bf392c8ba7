package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

const minimalRepo = "[repos.a]\nsecret = \"x\"\npath = \"/x\"\n"

// TestUnsignedConfig: the unsigned_* keys default to the server's budget and a week's
// retention, take the file's values, and refuse bad ones naming the key.
func TestUnsignedConfig(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, minimalRepo))
	if err != nil {
		t.Fatal(err)
	}
	if b := cfg.UnsignedBudget(); b != server.DefaultUnsignedBudget || cfg.Server.unsignedRetention != 7*24*time.Hour || cfg.Server.retention != 0 {
		t.Fatalf("defaults: budget %+v, unsigned_retention %s, retention %s", b, cfg.Server.unsignedRetention, cfg.Server.retention)
	}
	cfg, err = LoadConfig(writeConfig(t, "[server]\nunsigned_records_per_minute = 0\nunsigned_records_per_window = 50\n"+
		"unsigned_records_window = \"1h\"\nunsigned_retention = \"0\"\n"+minimalRepo))
	if err != nil {
		t.Fatal(err)
	}
	if b := cfg.UnsignedBudget(); b != (server.UnsignedBudget{PerMinute: 0, PerWindow: 50, Window: time.Hour}) || cfg.Server.unsignedRetention != 0 {
		t.Fatalf("from the file: budget %+v, unsigned_retention %s", b, cfg.Server.unsignedRetention)
	}
	for _, tc := range []struct{ body, want string }{
		{"unsigned_records_per_minute = -1", "server.unsigned_records_per_minute must be 0 or more"},
		{"unsigned_records_per_window = -5", "server.unsigned_records_per_window must be 0 or more"},
		{"unsigned_records_window = \"30s\"", "server.unsigned_records_window \"30s\": at least 1m"},
		{"unsigned_records_window = \"daily\"", "server.unsigned_records_window"},
		{"unsigned_retention = \"forever\"", "server.unsigned_retention"},
	} {
		t.Run(tc.want, func(t *testing.T) { assertConfigError(t, "[server]\n"+tc.body+"\n"+minimalRepo, []string{tc.want}) })
	}
}

// TestPruneUnsignedWithRetentionOff: with retention off (the default), the gateway's
// pruning loop still deletes deliveries without a valid signature older than the default
// unsigned_retention, and keeps signed ones however old.
func TestPruneUnsignedWithRetentionOff(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, minimalRepo))
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
		prune(loop, st, func() retention {
			return retention{all: cfg.Server.retention, unsigned: cfg.Server.unsignedRetention}
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
