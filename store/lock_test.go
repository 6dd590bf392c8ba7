package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/pgtest"
	"github.com/hookgate/hookgate/internal/testkit"
)

// TestGatewayLock: on PostgreSQL one gateway holds a database; a second is refused at
// once, and takes over as soon as the first closes. When the first's lock connection is
// cut, it takes the lock again on a new one; if another gateway was quicker, the first is
// told through GatewayLockLost.
func TestGatewayLock(t *testing.T) {
	url := pgtest.Database(t)
	old := lockCheckEvery
	lockCheckEvery = 50 * time.Millisecond
	t.Cleanup(func() { lockCheckEvery = old })
	ctx := context.Background()
	a, b := openAt(t, url), openAt(t, url)
	if err := a.LockGateway(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.LockGateway(ctx); !errors.Is(err, ErrGatewayRunning) {
		t.Fatalf("second gateway: %v, want ErrGatewayRunning", err)
	}
	// Cut a's lock connection from the server's side, as a server restart would: a takes
	// the lock again, and b is still refused.
	holder := func() int {
		t.Helper()
		var pid int
		err := b.rdb.QueryRowContext(ctx, `SELECT coalesce(max(pid), 0) FROM pg_locks WHERE locktype = 'advisory' AND granted`).Scan(&pid)
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	cut := holder()
	if _, err := b.rdb.ExecContext(ctx, `SELECT pg_terminate_backend($1)`, cut); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "a to take the lock again after its connection was cut", func() bool {
		pid := holder()
		return pid != 0 && pid != cut
	})
	if err := b.LockGateway(ctx); !errors.Is(err, ErrGatewayRunning) {
		t.Fatalf("second gateway after a's reconnection: %v, want ErrGatewayRunning", err)
	}
	select {
	case err := <-a.GatewayLockLost():
		t.Fatalf("a lost its lock: %v", err)
	default:
	}

	// Now another session is quicker: it cuts a's connection and waits for the lock in one
	// statement, so it is queued for the lock before a's backend has even ended. a hears
	// that it lost the database.
	pid := holder() // a's new connection
	other, err := b.wdb.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(ctx, `SELECT pg_terminate_backend($1), pg_advisory_lock($2, hashtext('gateway'))`,
		pid, gatewayLockClass); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-a.GatewayLockLost():
		if !errors.Is(err, ErrGatewayRunning) {
			t.Fatalf("a's loss: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a was not told it lost the lock")
	}
	if _, err := other.ExecContext(ctx, `SELECT pg_advisory_unlock($1, hashtext('gateway'))`, gatewayLockClass); err != nil {
		t.Fatal(err)
	}
	// A gateway that closes frees the database for the next at once.
	if err := b.LockGateway(ctx); err != nil {
		t.Fatalf("after the other session let go: %v", err)
	}
	b.Close()
	c := openAt(t, url)
	if err := c.LockGateway(ctx); err != nil {
		t.Fatalf("after b closed: %v", err)
	}
}
