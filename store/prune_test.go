package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestPruneUnsigned: PruneUnsigned deletes the old deliveries without a valid signature
// (missing, invalid, unchecked) and keeps every validly signed one, however old, and the
// recent unsigned ones.
func TestPruneUnsigned(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		record := func(at time.Time, guid, signature, status string) *Delivery {
			t.Helper()
			s.SetNow(func() time.Time { return at })
			d := &Delivery{GUID: guid, Repo: "site", Event: "push", Signature: signature, Status: status, HTTPStatus: 401}
			if status != DeliveryRejected {
				d.HTTPStatus = 200
			}
			if err := s.RecordDelivery(ctx, d); err != nil {
				t.Fatal(err)
			}
			return d
		}
		signedOld := record(old, "signed-old", SignatureValid, DeliveryIgnored)
		signedRejectedOld := record(old, "signed-rejected-old", SignatureValid, DeliveryRejected)
		gone := []*Delivery{
			record(old, "missing", SignatureMissing, DeliveryRejected),
			record(old, "invalid", SignatureInvalid, DeliveryRejected),
			record(old, "unchecked", SignatureUnchecked, DeliveryRejected),
		}
		recent := record(old.AddDate(0, 0, 8), "recent", SignatureMissing, DeliveryRejected)

		n, err := s.PruneUnsigned(ctx, old.AddDate(0, 0, 1))
		if err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Fatalf("pruned %d, want the 3 old unsigned deliveries", n)
		}
		for _, d := range gone {
			if _, err := s.Delivery(ctx, d.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("old unsigned delivery %q kept (%v)", d.GUID, err)
			}
		}
		for _, d := range []*Delivery{signedOld, signedRejectedOld, recent} {
			if _, err := s.Delivery(ctx, d.ID); err != nil {
				t.Errorf("delivery %q pruned: %v", d.GUID, err)
			}
		}
	})
}
