// Locks: one gateway per node name on a database (LockGateway, PostgreSQL's advisory
// locks held on a connection of their own), db copy's lock on the whole database, and
// SQLite's: an flock on a file beside the database (lockFile).

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// lockCheckTimeout bounds one check, and one attempt to take the lock again. It is not
// lockCheckEvery: a check that merely took long (a loaded host) must not be taken for a
// lost connection, since giving up the query closes the connection and frees the lock.
const lockCheckTimeout = 5 * time.Second

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
		ctx, cancel := context.WithTimeout(context.Background(), lockCheckTimeout)
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
				ctx, cancel := context.WithTimeout(context.Background(), lockCheckTimeout)
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

// ErrDatabaseInUse means another process holds the SQLite file (see WithExclusive): a
// running gateway, or hookgate db copy reading it.
var ErrDatabaseInUse = errors.New("the SQLite database is in use by another hookgate process")

// Two gateways on one SQLite file would each take the other's running deploys for ones a
// crash cut off, and end and re-queue them at start; PostgreSQL refuses that with
// LockGateway's advisory lock. A SQLite file has no session to hold a lock in, so the
// process holds an flock(2) on a file beside the database, DB.lock, open for its whole
// life: the kernel lets go of it when the process ends however it ends, SIGKILL
// included, so a restart after a crash is never refused. Why a file of its own and not the
// database: SQLite locks the database with fcntl(2) byte ranges, which on NFS is also how
// Linux emulates flock, so a lock on the database itself would shut out every reader
// there; and the lock file can say who holds it (the pid is written into it).
//
// Go opens every file close-on-exec, so deploy commands do not inherit the descriptor: a
// command left running by a crashed gateway does not keep its successor out.

// lockPath is where the lock for the database file db lives: beside the file the path
// leads to, symbolic links resolved, so two paths to one database share one lock.
func lockPath(db string) (string, error) {
	abs, err := filepath.Abs(db)
	if err != nil {
		return "", err
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		return resolved + ".lock", nil
	}
	// Not created yet: its folder exists (openSQLite made it).
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.Base(abs)) + ".lock", nil
}

// lockFile takes the exclusive lock on the SQLite database db for this process, or fails
// at once with ErrDatabaseInUse naming the database and the holder's pid.
func lockFile(db string) (*os.File, error) {
	name, err := lockPath(db)
	if err != nil {
		return nil, fmt.Errorf("lock database %s: %w", db, err)
	}
	// 0600: a deploy command of the gateway's group could otherwise open it and take the
	// lock, keeping the gateway from starting again.
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock database %s: %w", db, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by %s (lock file %s)",
				ErrDatabaseInUse, strings.TrimSuffix(name, ".lock"), holder(f), name)
		}
		return nil, fmt.Errorf("lock database %s: %w", db, err)
	}
	// The holder's pid, for the refusal a second gateway gets: a failure here must not pass
	// unseen (the err of an if statement's own scope would be gone by the check below).
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock database %s: write %s: %w", db, name, err)
	}
	return f, nil
}

// holder names the process holding the lock file f, as its pid. The holder writes it just
// after it took the lock, so a moment's wait covers a start-up racing this one.
func holder(f *os.File) string {
	for deadline := time.Now().Add(time.Second); ; time.Sleep(20 * time.Millisecond) {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n]))); err == nil && pid > 0 {
			return "pid " + strconv.Itoa(pid)
		}
		if time.Now().After(deadline) {
			return "another process (its pid is not in the lock file)"
		}
	}
}

// unlockFile lets go of the lock taken by lockFile, emptied first so that it names no
// process that no longer holds it. The file stays: removing it would let a process that
// opened it just before lock a file no one else can find.
func unlockFile(f *os.File) error {
	if f == nil {
		return nil
	}
	_ = f.Truncate(0)
	return f.Close()
}
