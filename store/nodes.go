package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// nodeName is what a node's name ([server] node) may be: it shows in pages, the API and logs.
var nodeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ValidNodeName tells whether name may name a node: letters, digits, '.', '_', '-', not
// starting with a punctuation mark, at most 63 characters.
func ValidNodeName(name string) bool { return nodeName.MatchString(name) }

// HeartbeatEvery is how often a gateway records that it is alive; one silent for three
// intervals is shown down.
const HeartbeatEvery = 10 * time.Second

// Node statuses.
const (
	NodeUp   = "up"
	NodeDown = "down"
)

// Node is a gateway working this database.
type Node struct {
	Name      string
	Version   string
	StartedAt time.Time
	LastSeen  time.Time
	Status    string   // up, or down when silent for three heartbeat intervals
	Repos     []string // the repositories it deploys
}

// RegisterNode records that the gateway name started now, running version and deploying
// repos; a name seen before takes the new values.
func (s *Store) RegisterNode(ctx context.Context, name, version string, repos []string) error {
	list, err := reposJSON(repos)
	if err != nil {
		return fmt.Errorf("register node %s: %w", name, err)
	}
	now := s.now()
	_, err = s.run(ctx, s.wdb, registerNodeSQL,
		name, version, now, now, list)
	if err != nil {
		return fmt.Errorf("register node %s: %w", name, err)
	}
	return nil
}

// Heartbeat records that the gateway name is alive now and deploys repos (they change
// with a reload).
func (s *Store) Heartbeat(ctx context.Context, name string, repos []string) error {
	list, err := reposJSON(repos)
	if err != nil {
		return fmt.Errorf("heartbeat of %s: %w", name, err)
	}
	res, err := s.run(ctx, s.wdb, heartbeatSQL,
		s.now(), list, name)
	if err != nil {
		return fmt.Errorf("heartbeat of %s: %w", name, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("heartbeat of %s: %w", name, ErrNotFound)
	}
	return nil
}

// Nodes lists the gateways that registered, by name.
func (s *Store) Nodes(ctx context.Context) ([]Node, error) {
	return listNodes(ctx, s, s.rdb, s.now())
}

// listNodes reads the nodes from db; d is the store, or a Store of db's engine for the
// statement's dialect only (Inspect).
func listNodes(ctx context.Context, d *Store, db querier, now time.Time) ([]Node, error) {
	rows, err := d.rows(ctx, db, listNodesSQL)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	defer rows.Close()
	out := []Node{}
	for rows.Next() {
		var n Node
		var repos string
		if err := rows.Scan(&n.Name, &n.Version, &n.StartedAt, &n.LastSeen, &repos); err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		if err := json.Unmarshal([]byte(repos), &n.Repos); err != nil {
			return nil, fmt.Errorf("list nodes: repos of %s: %w", n.Name, err)
		}
		n.StartedAt, n.LastSeen = n.StartedAt.UTC(), n.LastSeen.UTC()
		n.Status = NodeUp
		if now.Sub(n.LastSeen) > 3*HeartbeatEvery {
			n.Status = NodeDown
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

func reposJSON(repos []string) (string, error) {
	if repos == nil {
		repos = []string{}
	}
	b, err := json.Marshal(repos)
	return string(b), err
}

// ErrNodeUp means the node has been seen within three heartbeat intervals, so it cannot be
// removed.
var ErrNodeUp = errors.New("the node is up")

// RemoveNode takes a node that is down out of the fleet: deliveries no longer queue deploys
// for it, and its deploys still queued (they never ran) or running (cut off when it went
// down) are ended as interrupted with a reason, so the history does not show them waiting
// forever. It returns their ids. A node
// seen within three heartbeat intervals is refused with ErrNodeUp; an unknown one is
// ErrNotFound. A removed node that starts again registers again.
func (s *Store) RemoveNode(ctx context.Context, name string) ([]int64, error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("remove node %s: %w", name, err)
	}
	defer tx.Rollback()
	var lastSeen time.Time
	err = s.row(ctx, tx, nodeLastSeenSQL, name).Scan(&lastSeen)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("remove node %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("remove node %s: %w", name, err)
	}
	if s.now().Sub(lastSeen) <= 3*HeartbeatEvery {
		return nil, fmt.Errorf("remove node %s: last seen %s: %w", name, lastSeen.UTC().Format(time.RFC3339), ErrNodeUp)
	}
	if _, err := s.run(ctx, tx, deleteNodeSQL, name); err != nil {
		return nil, fmt.Errorf("remove node %s: %w", name, err)
	}
	rows, err := s.rows(ctx, tx, interruptNodeSQL,
		fmt.Sprintf("node %s was removed from the fleet before this deploy finished", name), s.now(), name)
	if err != nil {
		return nil, fmt.Errorf("remove node %s: %w", name, err)
	}
	ids, err := scanIDs(rows)
	if err != nil {
		return nil, fmt.Errorf("remove node %s: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("remove node %s: commit: %w", name, err)
	}
	slices.Sort(ids)
	return ids, nil
}
