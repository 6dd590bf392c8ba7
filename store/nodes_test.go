package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// TestNodes: a gateway registers with its version and repositories, its heartbeat keeps it
// up and follows a reload's repositories, and one silent for three intervals is down.
func TestNodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
		s.SetNow(func() time.Time { return at })
		if err := s.RegisterNode(ctx, "web1", "v1.2.0", []string{"blog", "site"}); err != nil {
			t.Fatal(err)
		}
		if err := s.RegisterNode(ctx, "web2", "v1.2.0", nil); err != nil {
			t.Fatal(err)
		}
		at = at.Add(2 * HeartbeatEvery)
		if err := s.Heartbeat(ctx, "web1", []string{"site"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Heartbeat(ctx, "web3", nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("heartbeat of a node never registered: %v", err)
		}
		at = at.Add(2 * HeartbeatEvery) // web1 beat 20 s ago, web2 40 s ago
		nodes, err := s.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
		want := []Node{
			{Name: "web1", Version: "v1.2.0", StartedAt: start, LastSeen: start.Add(2 * HeartbeatEvery), Status: NodeUp, Repos: []string{"site"}},
			{Name: "web2", Version: "v1.2.0", StartedAt: start, LastSeen: start, Status: NodeDown, Repos: []string{}},
		}
		if !reflect.DeepEqual(nodes, want) {
			t.Fatalf("nodes:\n%+v\nwant\n%+v", nodes, want)
		}
		// A restart registers again: a new start, up.
		if err := s.RegisterNode(ctx, "web2", "v1.3.0", []string{"site"}); err != nil {
			t.Fatal(err)
		}
		nodes, _ = s.Nodes(ctx)
		if n := nodes[1]; n.Version != "v1.3.0" || !n.StartedAt.Equal(at) || n.Status != NodeUp {
			t.Fatalf("web2 after its restart: %+v", n)
		}
	})
}
