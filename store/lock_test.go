package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/pgtest"
	"github.com/hookgate/hookgate/internal/testkit"
)

// TestGatewayLock: on PostgreSQL one gateway holds a node's name in a database; a second
// with the same name is refused at once, and takes over as soon as the first closes. When the first's lock connection is
// cut, it takes the lock again on a new one; if another gateway was quicker, the first is
// told through GatewayLockLost.
func TestGatewayLock(t *testing.T) {
	url := pgtest.Database(t)
	old := lockCheckEvery
	lockCheckEvery = 50 * time.Millisecond
	t.Cleanup(func() { lockCheckEvery = old })
	ctx := context.Background()
	a, b := openNode(t, url, "web1"), openNode(t, url, "web1")
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
		err := b.rdb.QueryRowContext(ctx, `SELECT coalesce(max(pid), 0) FROM pg_locks
			WHERE locktype = 'advisory' AND granted AND classid::bigint = $1`, gatewayLockClass).Scan(&pid)
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
	if _, err := other.ExecContext(ctx, `SELECT pg_terminate_backend($1), pg_advisory_lock($2, hashtext('web1'))`,
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
	if _, err := other.ExecContext(ctx, `SELECT pg_advisory_unlock($1, hashtext('web1'))`, gatewayLockClass); err != nil {
		t.Fatal(err)
	}
	// A gateway that closes frees the database for the next at once.
	if err := b.LockGateway(ctx); err != nil {
		t.Fatalf("after the other session let go: %v", err)
	}
	b.Close()
	c := openNode(t, url, "web1")
	if err := c.LockGateway(ctx); err != nil {
		t.Fatalf("after b closed: %v", err)
	}
}

// TestFleetLocks: gateways with different node names share a database; db copy into it is
// refused while any of them runs, and a gateway cannot start while a copy runs.
func TestFleetLocks(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	web1, web2, again := openNode(t, url, "web1"), openNode(t, url, "web2"), openNode(t, url, "web2")
	if err := web1.LockGateway(ctx); err != nil {
		t.Fatal(err)
	}
	if err := web2.LockGateway(ctx); err != nil {
		t.Fatalf("a second node beside the first: %v", err)
	}
	err := again.LockGateway(ctx)
	if !errors.Is(err, ErrGatewayRunning) || !strings.Contains(err.Error(), `"web2"`) {
		t.Fatalf("web2 twice: %v, want ErrGatewayRunning naming web2", err)
	}
	// The refused gateway let go of everything: once the two stop, the database is free.
	copier := openAt(t, url)
	if conn, err := copier.lockDatabase(ctx); err == nil {
		conn.Close()
		t.Fatal("db copy's lock was granted while two gateways run")
	}
	web1.Close()
	web2.Close()
	conn, err := copier.lockDatabase(ctx)
	if err != nil {
		t.Fatalf("db copy's lock once the gateways stopped (the refused one still holding a share?): %v", err)
	}
	defer conn.Close()
	late := openNode(t, url, "web3")
	if err := late.LockGateway(ctx); !errors.Is(err, ErrCopyRunning) {
		t.Fatalf("a gateway starting during db copy: %v", err)
	}
}

// openNode opens database as the gateway named node.
func openNode(t *testing.T, database, node string) *Store {
	t.Helper()
	return openAt(t, database, WithNode(node))
}

// TestNodesMigrateAtTheSameMoment: gateways of a fleet that start at once on a new
// database take turns applying the migrations: every one opens, and each migration is
// recorded once.
func TestNodesMigrateAtTheSameMoment(t *testing.T) {
	url := pgtest.Database(t)
	const nodes = 6
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, nodes)
	stores := make([]*Store, nodes)
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			stores[i], errs[i] = Open(context.Background(), url, WithNode(fmt.Sprintf("web%d", i+1)))
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("web%d: %v", i+1, err)
			continue
		}
		stores[i].Close()
	}
	if t.Failed() {
		return
	}
	s := openAt(t, url)
	var applied, distinct int
	if err := s.rdb.QueryRow(`SELECT count(*), count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0`).
		Scan(&applied, &distinct); err != nil {
		t.Fatal(err)
	}
	if applied != distinct || applied == 0 {
		t.Fatalf("%d migrations recorded, %d distinct", applied, distinct)
	}
}
