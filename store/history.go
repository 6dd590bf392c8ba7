// History: paged listings of deliveries and deploys, their filters and keyset paging.

package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// MaxLimit bounds one page of a listing.
const MaxLimit = 500

// DeliveryStatuses and DeployStatuses are the values a status filter takes.
var (
	DeliveryStatuses = []string{DeliveryAccepted, DeliveryIgnored, DeliveryRejected}
	DeployStatuses   = []string{DeployQueued, DeployWaiting, DeployRunning, DeployVerifying, DeploySucceeded, DeployFailed,
		DeployInterrupted, DeploySuperseded, DeploySkipped}
	SignatureResults = []string{SignatureValid, SignatureInvalid, SignatureMissing, SignatureUnchecked}
)

// Page is keyset paging over ids, newest first: Before returns rows older than that id,
// After rows newer than it (still newest first). Neither: the newest rows.
type Page struct {
	Before int64
	After  int64
	Limit  int
}

// DeliveryFilter narrows a delivery listing. Status matches the delivery's own status
// (accepted, ignored, rejected) or, for a deploy status (queued … interrupted), the status
// of the deploy it joined.
type DeliveryFilter struct {
	// Repo is a target: the deliveries of the hook it is (a hook that is its own target),
	// and the [hooks.NAME] deliveries that decided for it.
	Repo         string
	Hook         string // the hook the deliveries came through
	Status       string
	Event        string
	Signature    string
	CommitPrefix string // of the full "after" hash
	Since, Until time.Time
	Page
}

// DeployFilter narrows a deploy listing; Since and Until apply to the queued time.
type DeployFilter struct {
	Repo         string
	Status       string
	Trigger      string
	Node         string // the gateway that created the deploy
	CommitPrefix string // of to_commit
	Since, Until time.Time
	Page
}

// where accumulates conditions and their arguments.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

func (p Page) apply(w *where, idCol string) (order string, limit int, reverse bool) {
	limit = p.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, MaxLimit)
	switch {
	case p.Before > 0:
		w.add(idCol+" < ?", p.Before)
	case p.After > 0:
		w.add(idCol+" > ?", p.After)
		// Take the rows just above After in ascending order, then flip them.
		return " ORDER BY " + idCol + " ASC", limit, true
	}
	return " ORDER BY " + idCol + " DESC", limit, false
}

// ListDeliveries returns one page of deliveries, newest first, with the status of the
// deploy each joined.
func (s *Store) ListDeliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error) {
	var w where
	if f.Repo != "" {
		w.add(`(d.repo = ? AND NOT EXISTS (SELECT 1 FROM delivery_targets t WHERE t.delivery_id = d.id)
			OR d.id IN (SELECT delivery_id FROM delivery_targets WHERE repo = ?))`, f.Repo, f.Repo)
	}
	if f.Hook != "" {
		w.add("d.hook = ?", f.Hook)
	}
	if f.Status != "" {
		if isOneOf(f.Status, DeployStatuses) {
			// Any of its deploys: the one deploy_id names, or another node's.
			w.add(`(d.deploy_id IN (SELECT id FROM deploys WHERE status = ?) OR d.id IN (
				SELECT l.delivery_id FROM delivery_deploys l JOIN deploys x ON x.id = l.deploy_id WHERE x.status = ?))`,
				f.Status, f.Status)
		} else {
			w.add("d.status = ?", f.Status)
		}
	}
	// deliveries_event_id and deliveries_signature_id hold only the rare values; the
	// constant condition tells SQLite it may use them (it cannot tell from "= ?").
	if f.Event != "" {
		w.add("d.event = ?", f.Event)
		if f.Event != "push" {
			w.add("d.event != 'push'")
		}
	}
	if f.Signature != "" {
		w.add("d.signature = ?", f.Signature)
		if f.Signature != SignatureValid {
			w.add("d.signature != 'valid'")
		}
	}
	if f.CommitPrefix != "" {
		s.prefixRange(&w, "d.after_commit", f.CommitPrefix)
	}
	if !f.Since.IsZero() {
		w.add("d.received_at >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		w.add("d.received_at < ?", f.Until.UTC())
	}
	order, limit, reverse := f.Page.apply(&w, "d.id")
	q := `SELECT ` + deliveryColumns + ` FROM deliveries d LEFT JOIN deploys dp ON dp.id = d.deploy_id` +
		w.sql() + order + ` LIMIT ?`
	rows, err := s.rows(ctx, s.rdb, dynamic(q), append(w.args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	if reverse {
		flip(out)
	}
	if err := s.attachDeployRefs(ctx, out); err != nil {
		return nil, err
	}
	if err := s.attachTargets(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// attachTargets adds to each [hooks.NAME] delivery its per-target outcomes, by target
// name, with one query.
func (s *Store) attachTargets(ctx context.Context, ds []Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	byID, in, args := deliveriesByID(ds)
	rows, err := s.rows(ctx, s.rdb, dynamic(`SELECT delivery_id, repo, status, reason
		FROM delivery_targets WHERE delivery_id IN (`+in+`) ORDER BY delivery_id, repo`), args...)
	if err != nil {
		return fmt.Errorf("targets of deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var t TargetOutcome
		if err := rows.Scan(&id, &t.Repo, &t.Status, &t.Reason); err != nil {
			return fmt.Errorf("targets of deliveries: %w", err)
		}
		d := byID[id]
		d.Targets = append(d.Targets, t)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("targets of deliveries: %w", err)
	}
	return nil
}

// deliveriesByID indexes ds by id, with the IN list of their ids and its arguments, for
// one query about them all.
func deliveriesByID(ds []Delivery) (byID map[int64]*Delivery, in string, args []any) {
	byID = make(map[int64]*Delivery, len(ds))
	ids := make([]int64, len(ds))
	for i := range ds {
		byID[ds[i].ID] = &ds[i]
		ids[i] = ds[i].ID
	}
	in, args = inList(ids, 1)
	return byID, in, args
}

// attachDeployRefs adds to each delivery's Deploys the deploys it joined beyond the one
// its DeployID names (other nodes' deploys, in a fleet), with one query, and sorts them by
// node.
func (s *Store) attachDeployRefs(ctx context.Context, ds []Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	byID, in, args := deliveriesByID(ds)
	rows, err := s.rows(ctx, s.rdb, dynamic(`SELECT l.delivery_id, dp.node, dp.id, dp.status, dp.repo
		FROM delivery_deploys l JOIN deploys dp ON dp.id = l.deploy_id
		WHERE l.delivery_id IN (`+in+`)`), args...)
	if err != nil {
		return fmt.Errorf("deploys of deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var ref DeployRef
		if err := rows.Scan(&id, &ref.Node, &ref.ID, &ref.Status, &ref.Repo); err != nil {
			return fmt.Errorf("deploys of deliveries: %w", err)
		}
		d := byID[id]
		d.Deploys = append(d.Deploys, ref)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("deploys of deliveries: %w", err)
	}
	for i := range ds {
		if len(ds[i].Deploys) > 1 {
			slices.SortFunc(ds[i].Deploys, func(a, b DeployRef) int {
				return cmp.Or(strings.Compare(a.Repo, b.Repo), strings.Compare(a.Node, b.Node), cmp.Compare(a.ID, b.ID))
			})
		}
	}
	return nil
}

// ListDeploys returns one page of deploys, newest first, each with its delivery ids (but
// not its log).
func (s *Store) ListDeploys(ctx context.Context, f DeployFilter) ([]Deploy, error) {
	var w where
	if f.Repo != "" {
		w.add("repo = ?", f.Repo)
	}
	if f.Status != "" {
		w.add("status = ?", f.Status)
	}
	if f.Trigger != "" {
		w.add("triggered_by = ?", f.Trigger)
	}
	if f.Node != "" {
		w.add("node = ?", f.Node)
	}
	if f.CommitPrefix != "" {
		s.prefixRange(&w, "to_commit", f.CommitPrefix)
	}
	if !f.Since.IsZero() {
		w.add("queued_at >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		w.add("queued_at < ?", f.Until.UTC())
	}
	order, limit, reverse := f.Page.apply(&w, "id")
	rows, err := s.rows(ctx, s.rdb, dynamic(`SELECT `+deployColumns+` FROM deploys`+w.sql()+order+` LIMIT ?`),
		append(w.args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list deploys: %w", err)
	}
	out := []Deploy{}
	for rows.Next() {
		dp, err := scanDeploy(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list deploys: %w", err)
		}
		out = append(out, dp)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list deploys: %w", err)
	}
	if reverse {
		flip(out)
	}
	if err := s.attachDeliveryIDs(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// attachDeliveryIDs fills DeliveryIDs for a page of deploys with one query.
func (s *Store) attachDeliveryIDs(ctx context.Context, deploys []Deploy) error {
	if len(deploys) == 0 {
		return nil
	}
	byID := make(map[int64]*Deploy, len(deploys))
	ids := make([]int64, len(deploys))
	for i := range deploys {
		deploys[i].DeliveryIDs = []int64{}
		byID[deploys[i].ID] = &deploys[i]
		ids[i] = deploys[i].ID
	}
	in, args := inList(ids, 2)
	rows, err := s.rows(ctx, s.rdb, dynamic(`SELECT deploy_id, id FROM deliveries WHERE deploy_id IN (`+in+`)
		UNION ALL SELECT deploy_id, delivery_id FROM delivery_deploys WHERE deploy_id IN (`+in+`)
		ORDER BY 2`), args...)
	if err != nil {
		return fmt.Errorf("list deploys: delivery ids: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var dep, id int64
		if err := rows.Scan(&dep, &id); err != nil {
			return fmt.Errorf("list deploys: delivery ids: %w", err)
		}
		byID[dep].DeliveryIDs = append(byID[dep].DeliveryIDs, id)
	}
	return rows.Err()
}

// inList returns the placeholders of an IN list of ids ("?,?,?") and its arguments, the ids
// repeated times over for a statement that has the list that many times.
func inList(ids []int64, times int) (string, []any) {
	args := make([]any, 0, times*len(ids))
	for range times {
		for _, id := range ids {
			args = append(args, id)
		}
	}
	return strings.TrimSuffix(strings.Repeat("?,", len(ids)), ","), args
}

func isOneOf(v string, set []string) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

func flip[T any](s []T) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}
