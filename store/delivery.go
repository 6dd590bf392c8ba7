// Reading a delivery back: the columns every delivery query selects, scanDelivery and
// Store.Delivery.

package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

type scanner interface{ Scan(dest ...any) error }

func scanDelivery(row scanner, extra ...any) (Delivery, error) {
	var d Delivery
	var started, finished sql.NullTime
	var deployRepo string
	dest := []any{&d.ID, &d.GUID, &d.Repo, &d.Event, &d.Ref, &d.Before, &d.After,
		&d.Commit, &d.Signature, &d.SignatureAlg, &d.Status, &d.Reason, &d.HTTPStatus,
		&d.Redelivery, &d.ReceivedAt, &d.RemoteAddr, &d.UserAgent, &d.ContentType, &d.BodySize,
		&d.FullName, &d.RepoURL, &d.Pusher, &d.Message, &d.DeployID,
		&d.ReplayOf, &d.DeployStatus, &started, &finished, &d.DeployNode, &d.DeployToCommit,
		&d.Hook, &deployRepo}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return Delivery{}, err
	}
	d.ReceivedAt = d.ReceivedAt.UTC()
	d.DeployStartedAt = started.Time.UTC()
	d.DeployFinishedAt = finished.Time.UTC()
	d.Deploys = []DeployRef{}
	if d.DeployID != 0 {
		d.Deploys = append(d.Deploys, DeployRef{Node: d.DeployNode, ID: d.DeployID, Status: d.DeployStatus, Repo: deployRepo})
	}
	return d, nil
}

// Delivery returns one delivery with its headers and payload.
func (s *Store) Delivery(ctx context.Context, id int64) (Delivery, error) {
	var headers string
	var payload, stored []byte
	var encoding sql.NullString
	// Deliveries recorded before delivery_payloads existed keep their payload in their row.
	row := s.row(ctx, s.rdb, deliveryByIDSQL, id)
	d, err := scanDelivery(row, &headers, &payload, &encoding, &stored)
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("get delivery %d: %w", id, err)
	}
	if err := json.Unmarshal([]byte(headers), &d.Headers); err != nil {
		return Delivery{}, fmt.Errorf("get delivery %d: headers: %w", id, err)
	}
	if encoding.Valid {
		if payload, err = decodePayload(encoding.String, stored); err != nil {
			return Delivery{}, fmt.Errorf("get delivery %d: payload: %w", id, err)
		}
	}
	d.Payload = payload
	one := []Delivery{d}
	if err := s.attachDeployRefs(ctx, one); err != nil {
		return Delivery{}, fmt.Errorf("get delivery %d: %w", id, err)
	}
	if err := s.attachTargets(ctx, one); err != nil {
		return Delivery{}, fmt.Errorf("get delivery %d: %w", id, err)
	}
	return one[0], nil
}
