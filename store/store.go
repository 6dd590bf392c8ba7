// Package store keeps hookgate's history and queue in SQLite or PostgreSQL: every delivery
// that reached a configured hook and every deploy, queued or done. It is the only package
// that speaks SQL (and knows the two dialects apart: dialect.go); the rest of the gateway
// works through its methods and types.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/hookgate/hookgate/migrations"
)

// Sentinel errors, mapped to HTTP statuses in one place in server.
var (
	// ErrNotFound means no row matched.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the row was not in the state the operation needs.
	ErrConflict = errors.New("conflict")
	// ErrPinned means the repository is pinned, so the operation would move it.
	ErrPinned = errors.New("repository is pinned")
	// ErrNoNode means no running node deploys the repository, so nothing can be queued.
	ErrNoNode = errors.New(noTargetsReason)
)

// Store is the database: a SQLite file or a PostgreSQL database. On SQLite writes go
// through one connection, so they never meet SQLITE_BUSY from each other; reads use their
// own pool and, thanks to WAL, never wait for writes. On PostgreSQL wdb and rdb are one
// pool.
type Store struct {
	wdb *sql.DB
	rdb *sql.DB
	pg  bool // PostgreSQL, else SQLite; see dialect.go
	// pgConfig is how to connect to PostgreSQL, for connections outside the pool (the
	// listener of WatchQueue).
	pgConfig *pgx.ConnConfig
	now      func() time.Time
	// node is the gateway's name ([server] node), recorded on every deploy the store
	// creates; "" (WithNode not given) names none.
	node string

	batch    *batcher
	prepared prepared // the write path's statements

	// pubMu guards onQueued, the subscriber (OnQueued), and pending: per open
	// transaction, the repositories queued on this node, published at its commit.
	pubMu    sync.Mutex
	onQueued func(repo string)
	pending  map[*sql.Tx][]string
	// onReport (OnReport) and reported, the open transactions that wrote a report: the
	// outbox's sender is told at their commit.
	onReport func()
	reported map[*sql.Tx]bool
	// reporting is the set of repositories whose deploys are reported (SetReporting).
	reporting atomic.Pointer[map[string]bool]
	// checked is the set of repositories whose push and reconcile deploys wait for the
	// forge's checks (SetRequireChecks).
	checked atomic.Pointer[map[string]bool]

	// fileLock is the SQLite file's lock held for the store's life (WithExclusive), or nil.
	fileLock *os.File

	// PostgreSQL: the connection holding LockGateway's lock, and its keeper's channels.
	lockMu             sync.Mutex // guards held: the keeper replaces it
	held               *sql.Conn
	lockLost           chan error
	lockQuit, lockDone chan struct{}
	stopLock           sync.Once
}

// Synchronous says when a commit reaches stable storage: the SQLite PRAGMA synchronous the
// store's connections run with.
type Synchronous string

const (
	// SynchronousFull syncs the write-ahead log to disk inside every commit (one sync per
	// group commit, shared by the deliveries in it): a committed delivery survives a killed
	// process, an operating-system crash and a power loss. The default.
	SynchronousFull Synchronous = "full"
	// SynchronousNormal leaves the sync to checkpoints: a committed delivery survives a
	// killed process, but an operating-system crash or a power loss can lose the last
	// commits before a checkpoint (the database stays consistent).
	SynchronousNormal Synchronous = "normal"
)

// ParseSynchronous checks a configured value of Synchronous; "" means the default.
func ParseSynchronous(v string) (Synchronous, error) {
	switch Synchronous(v) {
	case "":
		return SynchronousFull, nil
	case SynchronousFull, SynchronousNormal:
		return Synchronous(v), nil
	}
	return "", fmt.Errorf("%q: use \"full\" or \"normal\"", v)
}

// Option changes how Open opens the database.
type Option func(*options)

type options struct {
	synchronous Synchronous
	node        string
	exclusive   bool
}

// WithExclusive makes a SQLite store the only one on its file among the processes that
// ask for it (gateways, db copy): Open takes an exclusive lock before it reads or writes
// anything, held until Close or the process's end, and fails at once with
// ErrDatabaseInUse, naming the holder's pid, while another process holds it. Stores opened
// without it (tests, scripts) are not kept out. PostgreSQL ignores it: see LockGateway.
func WithExclusive() Option {
	return func(o *options) { o.exclusive = true }
}

// WithNode names the gateway ([server] node) that the store records on every deploy it
// creates; without it deploys name no node ("").
func WithNode(name string) Option {
	return func(o *options) { o.node = name }
}

// WithSynchronous sets when commits reach stable storage; Open uses SynchronousFull
// without it.
func WithSynchronous(s Synchronous) Option {
	return func(o *options) { o.synchronous = s }
}

// Open opens the database and applies the migrations. database is a SQLite file's path
// (the file and its folder are created when missing) or a PostgreSQL URL
// (postgres://… or postgresql://…, see IsPostgres). The options are SQLite's; PostgreSQL
// commits are as durable as its server's settings make them. WithNode applies to both.
func Open(ctx context.Context, database string, opts ...Option) (*Store, error) {
	o := options{synchronous: SynchronousFull}
	for _, opt := range opts {
		opt(&o)
	}
	var s *Store
	var err error
	if IsPostgres(database) {
		s, err = openPostgres(ctx, database)
	} else {
		s, err = openSQLite(ctx, database, o)
	}
	if err != nil {
		return nil, err
	}
	s.node = o.node
	return s, nil
}

func openSQLite(ctx context.Context, path string, o options) (*Store, error) {
	if _, err := ParseSynchronous(string(o.synchronous)); err != nil {
		return nil, fmt.Errorf("open database: synchronous %w", err)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create database folder: %w", err)
		}
	}
	var lock *os.File
	if o.exclusive {
		// Before the migrations: a newer gateway must not change the schema under a
		// running one.
		var err error
		if lock, err = lockFile(path); err != nil {
			return nil, err
		}
	}
	s, err := openSQLiteFile(ctx, path, o)
	if err != nil {
		unlockFile(lock)
		return nil, err
	}
	s.fileLock = lock
	return s, nil
}

func openSQLiteFile(ctx context.Context, path string, o options) (*Store, error) {
	wdb, err := sql.Open("sqlite", dsn(path, false, o.synchronous))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)

	if err := migrate(ctx, wdb); err != nil {
		wdb.Close()
		return nil, err
	}

	stmts, err := prepareAll(ctx, wdb, writeStatements)
	if err != nil {
		wdb.Close()
		return nil, err
	}

	rdb, err := sql.Open("sqlite", dsn(path, true, o.synchronous))
	if err != nil {
		stmts.close()
		wdb.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	rdb.SetMaxOpenConns(8)
	rdb.SetMaxIdleConns(8)

	s := &Store{wdb: wdb, rdb: rdb, prepared: stmts, now: func() time.Time { return time.Now().UTC() }}
	s.batch = newBatcher(s)
	return s, nil
}

// dsn builds the connection string. The PRAGMAs go in the DSN so every pooled connection
// gets them; _txlock=immediate makes a writing transaction take the write lock at BEGIN
// instead of failing with SQLITE_BUSY at its first write.
func dsn(path string, readOnly bool, sync Synchronous) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	// In WAL mode FULL syncs the log in each commit, so "committed" (and so "answered")
	// means on disk; NORMAL syncs only at checkpoints. See Synchronous.
	if sync == SynchronousNormal {
		q.Add("_pragma", "synchronous(NORMAL)")
	} else {
		q.Add("_pragma", "synchronous(FULL)")
	}
	// Statement journals in memory: in a batch each INSERT (it checks a foreign key) opens
	// one, and on disk they cost a write system call per page the statement touches.
	q.Add("_pragma", "temp_store(MEMORY)")
	// The committing connection copies the WAL into the database file once the WAL
	// reaches this many pages, inside the commit, syncing both files: every delivery
	// that arrives meanwhile waits, so the size of that stall sets ingest's p99. Under
	// 64 connections, 500 pages (SQLite's default is 1,000) cut the p99 from 31-32 ms
	// to 23-26 ms at the same throughput; 250 cost throughput; 4,000 doubled the p99.
	q.Add("_pragma", "wal_autocheckpoint(500)")
	q.Set("_time_format", "sqlite")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

func migrate(ctx context.Context, db *sql.DB) error {
	p, err := goose.NewProvider(goose.DialectSQLite3, db, migrations.FS)
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// SetNow replaces the clock; tests use it to control recorded times.
func (s *Store) SetNow(now func() time.Time) { s.now = now }

// Close stops the write batcher and closes the database.
func (s *Store) Close() error {
	s.batch.close()
	s.prepared.close()
	if s.lockQuit != nil {
		s.stopLock.Do(func() { close(s.lockQuit) })
		<-s.lockDone
	}
	if held := s.heldConn(); held != nil {
		// Closing the pool below ends the session and with it the locks, but the server
		// lets go of them only once the session's process has ended: let go now, so a
		// gateway or db copy started right after this one stopped finds them free.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = s.run(ctx, held, unlockAllSQL)
		cancel()
		held.Close()
	}
	if s.rdb == s.wdb {
		return s.wdb.Close()
	}
	// The lock last: a gateway that starts once it is free finds the file closed.
	return errors.Join(s.rdb.Close(), s.wdb.Close(), unlockFile(s.fileLock))
}

// Ping reports whether the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.row(ctx, s.rdb, pingSQL).Scan(&one); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}
