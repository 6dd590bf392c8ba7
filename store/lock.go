// Locks: one gateway per node name on a database (LockGateway, PostgreSQL's advisory
// locks held on a connection of their own), and db copy's lock on the whole database.

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrGatewayRunning means a gateway with the same node name ([server] node) holds the
// database (see LockGateway), or a db copy into it is running.
var ErrGatewayRunning = errors.New("a hookgate gateway with this node name is already running on this database")

// ErrCopyRunning means hookgate db copy is filling the database: no gateway may start until
// it ends.
var ErrCopyRunning = errors.New("hookgate db copy is filling this database; start the gateway once it has finished")

// Advisory lock keys: the first is the class, "hg" in ASCII then a number.
const (
	// gatewayLockClass: one lock per node name, held by the node's gateway.
	gatewayLockClass = 0x68670002
	// fleetLockClass: every gateway holds it shared; db copy takes it exclusive.
	fleetLockClass = 0x68670003
)

// LockGateway makes this process the one gateway named by the store's node (WithNode)
// that works the database, or fails at once with ErrGatewayRunning: two processes of one
// node would claim the same deploys and interrupt each other's at start-up. Gateways with
// other names run beside it (a fleet). On PostgreSQL it is a session-level advisory lock
// on the name, held by a connection of this process's own until Close: a gateway killed
// even with SIGKILL loses its connection, the server releases the lock, and a restart
// succeeds at once, with no lease to wait out. On SQLite it does nothing.
//
// If that connection dies while the gateway runs (the server restarted, a network cut),
// the lock goes with it: the store takes it again on a new connection, and if another
// gateway took it meanwhile, GatewayLockLost says so.
func (s *Store) LockGateway(ctx context.Context) error {
	if !s.pg {
		return nil
	}
	conn, err := s.takeGatewayLock(ctx)
	if err != nil {
		return err
	}
	s.setHeld(conn)
	s.lockLost = make(chan error, 1)
	s.lockQuit, s.lockDone = make(chan struct{}), make(chan struct{})
	go s.keepGatewayLock()
	return nil
}

// GatewayLockLost delivers an error once another gateway holds the lock this one lost;
// the gateway must then stop without touching the queue. Nil (never ready) on SQLite.
func (s *Store) GatewayLockLost() <-chan error { return s.lockLost }

func (s *Store) takeGatewayLock(ctx context.Context) (*sql.Conn, error) {
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock gateway: %w", err)
	}
	var fleet, node bool
	if err := s.row(ctx, conn, tryFleetSharedSQL,
		fleetLockClass).Scan(&fleet); err != nil {
		conn.Close()
		return nil, fmt.Errorf("lock gateway: %w", err)
	}
	if !fleet {
		conn.Close()
		return nil, ErrCopyRunning
	}
	if err := s.row(ctx, conn, tryGatewayLockSQL,
		gatewayLockClass, s.node).Scan(&node); err != nil {
		conn.Close()
		return nil, fmt.Errorf("lock gateway: %w", err)
	}
	if !node {
		// The connection goes back to the pool, its session open: let go of the shared
		// lock, or db copy would wait for this pool's end.
		_, err := s.run(ctx, conn, unlockFleetSharedSQL, fleetLockClass)
		conn.Close()
		if err != nil {
			return nil, fmt.Errorf("lock gateway: %w", err)
		}
		return nil, fmt.Errorf("%w (node %q)", ErrGatewayRunning, s.node)
	}
	return conn, nil
}

// lockDatabase makes this process the only one working the database, for db copy: no
// gateway of any name may run while it holds the returned connection, and none may start.
func (s *Store) lockDatabase(ctx context.Context) (*sql.Conn, error) {
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock database: %w", err)
	}
	var got bool
	if err := s.row(ctx, conn, tryFleetLockSQL, fleetLockClass).Scan(&got); err != nil {
		conn.Close()
		return nil, fmt.Errorf("lock database: %w", err)
	}
	if !got {
		conn.Close()
		return nil, errors.New("a hookgate gateway is running on this database: stop every gateway on it first")
	}
	return conn, nil
}

func (s *Store) heldConn() *sql.Conn {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	return s.held
}

func (s *Store) setHeld(c *sql.Conn) {
	s.lockMu.Lock()
	s.held = c
	s.lockMu.Unlock()
}

// lockCheckEvery is how often the lock's connection is checked.
var lockCheckEvery = 5 * time.Second

func (s *Store) keepGatewayLock() {
	defer close(s.lockDone)
	t := time.NewTicker(lockCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-s.lockQuit:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), lockCheckEvery)
		held := s.heldConn()
		_, err := s.run(ctx, held, pingSQL)
		if err == nil {
			cancel()
			continue
		}
		// The connection is gone, and with it the lock; database/sql drops a broken
		// connection when it is handed back.
		held.Close()
		s.setHeld(nil)
		conn, err := s.takeGatewayLock(ctx)
		cancel()
		switch {
		case err == nil:
			s.setHeld(conn)
		case errors.Is(err, ErrGatewayRunning):
			s.lockLost <- fmt.Errorf("lost the gateway lock with its database connection: %w", err)
			return
		default:
			// The database is unreachable: nothing can be written anyway; try again.
			for s.heldConn() == nil {
				select {
				case <-s.lockQuit:
					return
				case <-t.C:
				}
				ctx, cancel := context.WithTimeout(context.Background(), lockCheckEvery)
				conn, err := s.takeGatewayLock(ctx)
				cancel()
				if errors.Is(err, ErrGatewayRunning) {
					s.lockLost <- fmt.Errorf("lost the gateway lock with its database connection: %w", err)
					return
				}
				s.setHeld(conn)
			}
		}
	}
}
