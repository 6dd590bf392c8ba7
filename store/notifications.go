package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Notification outcomes.
const (
	NotificationSent    = "sent"
	NotificationFailed  = "failed"  // every attempt failed
	NotificationDropped = "dropped" // the send queue was full; never attempted
)

// Notification is one message to one target about one deploy.
type Notification struct {
	ID         int64
	DeployID   int64
	Repo       string
	Target     string // the target's name
	Kind       string // webhook or slack
	Event      string // failure or recovery
	Status     string
	Attempts   int
	HTTPStatus int
	Error      string
	CreatedAt  time.Time
	FinishedAt time.Time
}

// RecordNotification stores how a notification ended.
func (s *Store) RecordNotification(ctx context.Context, n *Notification) error {
	if n.FinishedAt.IsZero() {
		n.FinishedAt = s.now()
	}
	if n.CreatedAt.IsZero() {
		n.CreatedAt = n.FinishedAt
	}
	err := s.row(ctx, s.wdb, insertNotificationSQL,
		nullID(n.DeployID), n.Repo, n.Target, n.Kind, n.Event, n.Status, n.Attempts,
		n.HTTPStatus, n.Error, n.CreatedAt.UTC(), n.FinishedAt.UTC()).Scan(&n.ID)
	if err != nil {
		return fmt.Errorf("record notification: %w", err)
	}
	return nil
}

// Notifications lists repo's notifications (all repositories when repo is ""), newest first.
func (s *Store) Notifications(ctx context.Context, repo string, limit int) ([]Notification, error) {
	q := notificationColumns
	args := []any{}
	if repo != "" {
		q += ` WHERE repo = ?`
		args = append(args, repo)
	}
	return s.listNotifications(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, min(max(limit, 1), MaxLimit))...)
}

// DeployNotifications lists the notifications about one deploy, oldest first.
func (s *Store) DeployNotifications(ctx context.Context, deployID int64) ([]Notification, error) {
	return s.listNotifications(ctx, notificationColumns+` WHERE deploy_id = ? ORDER BY id LIMIT ?`, deployID, MaxLimit)
}

const notificationColumns = `SELECT id, COALESCE(deploy_id, 0), repo, target, kind, event, status, attempts,
		http_status, error, created_at, finished_at FROM notifications`

func (s *Store) listNotifications(ctx context.Context, q string, args ...any) ([]Notification, error) {
	rows, err := s.rows(ctx, s.rdb, dynamic(q), args...)
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	defer rows.Close()
	out := []Notification{}
	for rows.Next() {
		var n Notification
		if err := rows.Scan(&n.ID, &n.DeployID, &n.Repo, &n.Target, &n.Kind, &n.Event, &n.Status,
			&n.Attempts, &n.HTTPStatus, &n.Error, &n.CreatedAt, &n.FinishedAt); err != nil {
			return nil, fmt.Errorf("list notifications: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// PreviousOutcome returns the status of repo's newest deploy before id, on the node that
// ran id, that succeeded or failed ("" when there is none); interrupted deploys say nothing
// about the code.
func (s *Store) PreviousOutcome(ctx context.Context, repo string, id int64) (string, error) {
	var status string
	err := s.row(ctx, s.rdb, previousOutcomeSQL, id, repo, id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("previous outcome of %s: %w", repo, err)
	}
	return status, nil
}
