// Fan-out: the nodes that deploy a repository, and one queued deploy on each of them.

package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
)

// A fleet is several gateways ("nodes", [server] node) on one PostgreSQL database. Each
// registers the repositories it deploys (RegisterNode, Heartbeat); a delivery recorded by
// any of them becomes one queued deploy per node that deploys its repository, coalesced
// per node and repository, and each node claims only its own (ClaimDeploy). A node is
// woken for a deploy another node queued through LISTEN/NOTIFY (WatchQueue), with a poll
// of its queue as the fallback. SQLite has one gateway, which is its only node.

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
