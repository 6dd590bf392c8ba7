package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// A fleet is several gateways ("nodes", [server] node) on one PostgreSQL database. Each
// registers the repositories it deploys (RegisterNode, Heartbeat); a delivery recorded by
// any of them becomes one queued deploy per node that deploys its repository, coalesced
// per node and repository, and each node claims only its own (ClaimDeploy). A node is
// woken for a deploy another node queued through LISTEN/NOTIFY (WatchQueue), with a poll
// of its queue as the fallback. SQLite has one gateway, which is its only node.

// nodesSQL reads the registered nodes and the repositories each deploys.
const nodesSQL = `SELECT name, repos FROM nodes`

// targetsInBatch returns, sorted, the nodes that deploy repo: the registered nodes whose
// repositories include it. On SQLite that is this gateway only (one gateway per file; a
// node registered in the file by an earlier name is not running). A store whose own node
// never registered (used on its own, as tests and tools do) deploys every repository. The
// nodes are read once per state: the delivery writer keeps one per batch.
func (s *Store) targetsInBatch(ctx context.Context, tx *sql.Tx, st *batchState, repo string) ([]string, error) {
	if st.nodes == nil {
		nodes, err := s.readNodes(ctx, tx)
		if err != nil {
			return nil, err
		}
		st.nodes = nodes
	}
	return s.targetsAmong(st.nodes, repo), nil
}

// readNodes reads the registered nodes and the repositories each deploys.
func (s *Store) readNodes(ctx context.Context, tx *sql.Tx) (map[string][]string, error) {
	rows, err := s.query(ctx, tx, nodesSQL)
	if err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	defer rows.Close()
	nodes := map[string][]string{}
	for rows.Next() {
		var name, list string
		if err := rows.Scan(&name, &list); err != nil {
			return nil, fmt.Errorf("read nodes: %w", err)
		}
		var repos []string
		if err := json.Unmarshal([]byte(list), &repos); err != nil {
			return nil, fmt.Errorf("read nodes: repos of %s: %w", name, err)
		}
		nodes[name] = repos
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	return nodes, nil
}

func (s *Store) targetsAmong(nodes map[string][]string, repo string) []string {
	var out []string
	for name, repos := range nodes {
		if (s.pg || name == s.node) && slices.Contains(repos, repo) {
			out = append(out, name)
		}
	}
	if _, ok := nodes[s.node]; !ok {
		out = append(out, s.node)
	}
	slices.Sort(out)
	return out
}

// fanOut queues, or joins, a deploy of repo on every node that deploys it, in tx, and
// returns their ids in the nodes' order and the index of the primary one (see primary).
// No node deploying repo is ErrNoNode.
func (s *Store) fanOut(ctx context.Context, tx *sql.Tx, repo, trigger, ref string) ([]int64, int, error) {
	targets, err := s.targetsInBatch(ctx, tx, newBatchState(), repo)
	if err != nil {
		return nil, 0, err
	}
	if len(targets) == 0 {
		return nil, 0, fmt.Errorf("%s: %w", repo, ErrNoNode)
	}
	ids := make([]int64, len(targets))
	for i, n := range targets {
		if ids[i], err = s.enqueue(ctx, tx, repo, n, trigger, ref); err != nil {
			return nil, 0, err
		}
	}
	return ids, s.primary(targets), nil
}

// The PostgreSQL notification channels gateways listen on (WatchQueue).
const (
	// queueChannel: a deploy was queued for a node; the payload is "node repo".
	queueChannel = "hookgate_deploys"
	// reconcileChannel: every node that deploys the repository named in the payload
	// should compare origin's head with what it has live now (its pin was lifted).
	reconcileChannel = "hookgate_reconcile"
)

// wakeNode tells node, when it is another gateway, that a deploy of repo is queued for
// it: on PostgreSQL the notification goes out when tx commits (and one identical
// notification per transaction is sent once). This gateway's own workers are woken by its
// caller, in the process.
func (s *Store) wakeNode(ctx context.Context, tx *sql.Tx, node, repo string) error {
	if !s.pg || node == s.node {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, queueChannel, node+" "+repo)
	return err
}

// QueuePollEvery is how often a gateway reads its queue whatever the notifications said
// (see WatchQueue): a notification is lost while the listening connection is down.
const QueuePollEvery = 5 * time.Second

// Watch says what WatchQueue calls.
type Watch struct {
	// Wake is called with the repository of a deploy queued for this node (by another
	// gateway, or found by the poll).
	Wake func(repo string)
	// Reconcile is called with a repository whose pin another gateway lifted, for this
	// node to check origin's head against its live commit (see Store.Unpin). It must not
	// block: WatchQueue waits for it.
	Reconcile func(repo string)
}

// WatchQueue calls w.Wake with the repository of each deploy queued for this node by
// another gateway, and w.Reconcile with each repository another gateway unpinned, until
// ctx ends. On PostgreSQL it listens on a connection of its own and, every poll interval
// and each time that connection is made again, also calls Wake for every repository with
// a deploy queued for this node. On SQLite it returns at once: there is no other gateway.
func (s *Store) WatchQueue(ctx context.Context, every time.Duration, w Watch, log *slog.Logger) {
	if !s.pg {
		return
	}
	poll := func() {
		pctx, cancel := context.WithTimeout(ctx, max(every, QueuePollEvery))
		defer cancel()
		repos, err := s.QueuedRepos(pctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("read the deploy queue", "err", err)
			}
			return
		}
		for _, r := range repos {
			w.Wake(r)
		}
	}
	lastPoll := time.Now()
	pollNow := func() {
		poll()
		lastPoll = time.Now()
	}
	for ctx.Err() == nil {
		conn, err := s.listen(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("listen for queued deploys; polling meanwhile", "err", err, "every", every)
		}
		pollNow() // what was queued while no connection listened
		for conn != nil {
			// Every node hears every notification: under a stream of other nodes' ones
			// the poll must still come round, so the wait ends at the next poll's time.
			wctx, cancel := context.WithDeadline(ctx, lastPoll.Add(every))
			n, err := conn.WaitForNotification(wctx)
			cancel()
			switch {
			case err == nil:
				if n.Channel == reconcileChannel {
					w.Reconcile(n.Payload)
				} else if node, repo, ok := strings.Cut(n.Payload, " "); ok && node == s.node {
					w.Wake(repo)
				}
				if time.Since(lastPoll) >= every {
					pollNow()
				}
				continue
			case ctx.Err() != nil:
				conn.Close(context.Background())
				return
			case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
				pollNow()
				continue
			}
			log.Warn("the connection listening for queued deploys broke; connecting again", "err", err)
			conn.Close(context.Background())
			conn = nil
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// listen opens a connection that listens on queueChannel.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, QueuePollEvery)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, s.pgConfig.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(cctx, `LISTEN `+queueChannel+`; LISTEN `+reconcileChannel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}
