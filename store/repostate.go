// Repository state: a repository's last, queued and last successful deploys (RepoState),
// and what each node has of it (RepoNodes).

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// RepoState is what the history knows of one repository's deploys.
type RepoState struct {
	Last    *Deploy // the newest deploy that is not queued (running or finished)
	Queued  *Deploy
	LastOK  *Deploy // the newest succeeded deploy: what is live
	Pending int     // deliveries waiting in the queued deploy
}

// RepoState returns repo's last, queued and last successful deploys.
func (s *Store) RepoState(ctx context.Context, repo string) (RepoState, error) {
	var st RepoState
	get := func(q string) (*Deploy, error) {
		dp, err := scanDeploy(s.row(ctx, s.rdb, dynamic(`SELECT `+deployColumns+` FROM deploys WHERE repo = ? AND `+q+` ORDER BY id DESC LIMIT 1`), repo))
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("state of %s: %w", repo, err)
		}
		return &dp, nil
	}
	var err error
	if st.Last, err = get(`status != 'queued'`); err != nil {
		return st, err
	}
	if st.Queued, err = get(`status = 'queued'`); err != nil {
		return st, err
	}
	if st.LastOK, err = get(`status = 'succeeded'`); err != nil {
		return st, err
	}
	if st.Queued != nil {
		if err := s.row(ctx, s.rdb, deployDeliveryCountSQL,
			st.Queued.ID, st.Queued.ID).Scan(&st.Pending); err != nil {
			return st, fmt.Errorf("state of %s: %w", repo, err)
		}
	}
	return st, nil
}

// RepoNode is what one node has of a repository: the commit live there and the deploys it
// is running and has queued.
type RepoNode struct {
	Node            string
	LiveCommit      string // to_commit of the node's newest succeeded deploy; "" when none
	RunningDeployID int64  // 0 when none
	QueuedDeployID  int64  // 0 when none
	// Down and LastSeen are the node's heartbeat as Nodes reads it: a down node's queued
	// deploy waits for it. Both zero for a node no longer registered.
	Down     bool
	LastSeen time.Time
}

// RepoNodes lists, sorted by name, the nodes that deploy repo (registered with repo among
// their repositories, up or down) or have a deploy of it queued or running, each with its
// live commit and its running and queued deploys. A node taken out of the fleet
// (RemoveNode), or that no longer deploys repo, is not listed for its history alone.
// Deploys that name no node ("", recorded before deploys named one) belong to none. The
// list is empty, not nil, when there is none.
func (s *Store) RepoNodes(ctx context.Context, repo string) ([]RepoNode, error) {
	nodes, err := s.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("nodes of %s: %w", repo, err)
	}
	var names []string
	byName := make(map[string]Node, len(nodes))
	for _, n := range nodes {
		byName[n.Name] = n
		if slices.Contains(n.Repos, repo) {
			names = append(names, n.Name)
		}
	}
	rows, err := s.rows(ctx, s.rdb, busyNodesSQL, repo, repo)
	if err != nil {
		return nil, fmt.Errorf("nodes of %s: %w", repo, err)
	}
	busy, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("nodes of %s: %w", repo, err)
	}
	names = append(names, busy...)
	// Sorted here, byte by byte: PostgreSQL's ORDER BY follows the database's collation,
	// SQLite's does not.
	slices.Sort(names)
	names = slices.Compact(names)
	out := make([]RepoNode, 0, len(names))
	for _, name := range names {
		n := RepoNode{Node: name}
		if reg, ok := byName[name]; ok {
			n.Down, n.LastSeen = reg.Status == NodeDown, reg.LastSeen
		}
		if err := s.row(ctx, s.rdb, repoNodeSQL, name, repo, name, repo, name, repo).
			Scan(&n.LiveCommit, &n.RunningDeployID, &n.QueuedDeployID); err != nil {
			return nil, fmt.Errorf("nodes of %s: %s: %w", repo, name, err)
		}
		out = append(out, n)
	}
	return out, nil
}
