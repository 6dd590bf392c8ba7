package repos

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/pgtest"
	"github.com/hookgate/hookgate/internal/testkit"
	gitcheckout "github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/store"
)

// lockedBuffer is a log destination the test reads while the manager writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestResultRecordedAfterTheDatabaseComesBack: a deploy that ends while PostgreSQL refuses
// connections keeps trying to record its result, and records it once the database is back,
// instead of staying "running" until the gateway restarts.
func TestResultRecordedAfterTheDatabaseComesBack(t *testing.T) {
	database := pgtest.Database(t)
	u, err := url.Parse(database)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin, err := sql.Open("pgx", os.Getenv(pgtest.Env))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	ctx := context.Background()
	allow := func(yes bool) {
		t.Helper()
		if _, err := admin.ExecContext(ctx, `ALTER DATABASE `+name+` ALLOW_CONNECTIONS `+map[bool]string{true: "true", false: "false"}[yes]); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { allow(true) }) // or the database cannot be dropped

	st, err := store.Open(ctx, database, store.WithNode("web1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	origin := testkit.NewOrigin(t)
	checkout := origin.Clone()
	dir := t.TempDir()
	hold, started := filepath.Join(dir, "hold"), filepath.Join(dir, "started")
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	m := NewManager(st, []Repo{{
		Spec:     gitcheckout.Spec{Name: "site", Path: checkout, Branch: "main"},
		Commands: []string{"touch " + started + "; while [ -f " + hold + " ]; do sleep 0.02; done"},
		Timeout:  time.Minute,
	}}, Options{Workers: 1, Env: []string{"PATH=" + os.Getenv("PATH")}, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	m.Start()
	t.Cleanup(func() { m.Stop(10 * time.Second) })
	d := &store.Delivery{GUID: "g1", Repo: "site", Event: "push", Ref: "refs/heads/main",
		Signature: store.SignatureValid, Status: store.DeliveryAccepted, HTTPStatus: 202}
	if err := st.RecordDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	m.Wake("site")
	testkit.Eventually(t, 60*time.Second, "the deploy's command to start", func() bool {
		_, err := os.Stat(started)
		return err == nil
	})

	// The database goes away while the command runs, which then ends.
	allow(false)
	if _, err := admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(hold); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 60*time.Second, "a failed attempt to record the result", func() bool {
		return strings.Contains(logs.String(), "record deploy result")
	})
	allow(true)
	testkit.Eventually(t, 90*time.Second, "the result recorded once the database is back", func() bool {
		dp, err := st.Deploy(ctx, d.DeployID)
		return err == nil && dp.Status == store.DeploySucceeded
	})
}
