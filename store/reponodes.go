package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// RepoNode is what one node has of a repository: the commit live there and the deploys it
// is running and has queued.
type RepoNode struct {
	Node            string
	LiveCommit      string // to_commit of the node's newest succeeded deploy; "" when none
	RunningDeployID int64  // 0 when none
	QueuedDeployID  int64  // 0 when none
}

// repoNodesSQL finds, for each node that has a deploy of the repository, its newest
// succeeded, running and queued deploys. On SQLite the nodes come from the repository's
// deploys (deploys_repo_id, all of them), the live commit from deploys_node_repo_id read
// newest first, the running and queued ids from the partial indexes deploys_running and
// deploys_one_queued.
const repoNodesSQL = `
	WITH named(node) AS (SELECT DISTINCT node FROM deploys WHERE repo = ? AND node != '')
	SELECT named.node,
		COALESCE((SELECT d.to_commit FROM deploys d WHERE d.repo = ? AND d.node = named.node
			AND d.status = 'succeeded' ORDER BY d.id DESC LIMIT 1), ''),
		COALESCE((SELECT d.id FROM deploys d WHERE d.repo = ? AND d.node = named.node
			AND d.status = 'running' ORDER BY d.id DESC LIMIT 1), 0),
		COALESCE((SELECT d.id FROM deploys d WHERE d.repo = ? AND d.node = named.node
			AND d.status = 'queued' ORDER BY d.id DESC LIMIT 1), 0)
	FROM named`

// RepoNodes lists, sorted by name, the nodes that deploy repo (registered with repo among
// their repositories) or have any deploy of it, each with its live commit and its running
// and queued deploys. Deploys that name no node ("", recorded before deploys named one)
// belong to none. The list is empty, not nil, when there is none.
func (s *Store) RepoNodes(ctx context.Context, repo string) ([]RepoNode, error) {
	rows, err := s.rdb.QueryContext(ctx, s.sql(repoNodesSQL), repo, repo, repo, repo)
	if err != nil {
		return nil, fmt.Errorf("nodes of %s: %w", repo, err)
	}
	defer rows.Close()
	out := []RepoNode{}
	for rows.Next() {
		var n RepoNode
		if err := rows.Scan(&n.Node, &n.LiveCommit, &n.RunningDeployID, &n.QueuedDeployID); err != nil {
			return nil, fmt.Errorf("nodes of %s: %w", repo, err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("nodes of %s: %w", repo, err)
	}
	rows.Close()
	// The nodes that deploy repo and never ran a deploy of it: nothing live, nothing
	// running. Their repos are a JSON list, filtered here rather than in each engine's
	// JSON functions.
	nodes, err := s.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("nodes of %s: %w", repo, err)
	}
	for _, n := range nodes {
		if slices.Contains(n.Repos, repo) && !slices.ContainsFunc(out, func(r RepoNode) bool { return r.Node == n.Name }) {
			out = append(out, RepoNode{Node: n.Name})
		}
	}
	// Sorted here, byte by byte: PostgreSQL's ORDER BY follows the database's collation,
	// SQLite's does not.
	slices.SortFunc(out, func(a, b RepoNode) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}
