package store

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
)

// TestPayloadStorage records payloads of each kind and reads them back byte for byte: a
// real 7 KB push (stored compressed), one too small to gain from compression (stored as
// is), none at all (no row), and one recorded before delivery_payloads existed (in its
// deliveries row, where the store still finds it).
func TestPayloadStorage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		big := testkit.Push(t, "refs/heads/main", strings.Repeat("0", 39)+"1",
			"1f9c2a3b4d5e6f708192a3b4c5d6e7f8091a2b3c", "acme/app")
		for _, tc := range []struct {
			name     string
			payload  []byte
			encoding string // "" when no payload row is written
		}{
			{"push", big, encodingS2},
			{"small", []byte(`{}`), encodingIdentity},
			{"none", nil, ""},
		} {
			d := push("site", "guid-"+tc.name)
			d.Payload = tc.payload
			if err := s.RecordDelivery(ctx, d); err != nil {
				t.Fatal(err)
			}
			var encoding string
			var stored int
			err := s.rdb.QueryRowContext(ctx, s.sql(`SELECT coalesce(max(encoding), ''), coalesce(max(length(payload)), 0)
			FROM delivery_payloads WHERE delivery_id = ?`), d.ID).Scan(&encoding, &stored)
			if err != nil {
				t.Fatal(err)
			}
			if encoding != tc.encoding {
				t.Errorf("%s: stored as %q, want %q", tc.name, encoding, tc.encoding)
			}
			if tc.encoding == encodingS2 && stored*2 > len(tc.payload) {
				t.Errorf("%s: %d bytes stored for a %d-byte payload", tc.name, stored, len(tc.payload))
			}
			got, err := s.Delivery(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Payload, tc.payload) || (got.Payload == nil) != (tc.payload == nil) {
				t.Errorf("%s: payload read back as %d bytes (nil %v), want %d", tc.name, len(got.Payload), got.Payload == nil, len(tc.payload))
			}
		}

		// A row as migrations 00001-00003 wrote it.
		var id int64
		err := s.wdb.QueryRowContext(ctx, s.sql(`INSERT INTO deliveries (repo, signature, status, http_status, received_at, payload)
		VALUES ('site', 'valid', 'ignored', 200, ?, ?) RETURNING id`), s.now(), []byte(`{"old":true}`)).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Delivery(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Payload) != `{"old":true}` {
			t.Errorf("payload of an older row read back as %q", got.Payload)
		}
	})
}

// TestPruneDeletesPayloads: a pruned delivery's payload goes with it.
func TestPruneDeletesPayloads(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
		s.SetNow(func() time.Time { return at })
		old := push("site", "old")
		old.Payload = bytes.Repeat([]byte(`{"a":1},`), 100)
		if err := s.RecordDelivery(ctx, old); err != nil {
			t.Fatal(err)
		}
		s.SetNow(func() time.Time { return at.Add(time.Hour) })
		fresh := push("site", "fresh")
		if err := s.RecordDelivery(ctx, fresh); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Prune(ctx, at.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		var ids []int64
		rows, err := s.rdb.QueryContext(ctx, s.sql(`SELECT delivery_id FROM delivery_payloads ORDER BY delivery_id`))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		if len(ids) != 1 || ids[0] != fresh.ID {
			t.Fatalf("payload rows after pruning: %v, want only %d", ids, fresh.ID)
		}
	})
}
