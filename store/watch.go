// Watch: waking another node of the fleet (pg_notify) and hearing those wake-ups
// (WatchQueue, LISTEN, a poll of the queue as the fallback).

package store

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The PostgreSQL notification channels gateways listen on (WatchQueue).
const (
	// queueChannel: a deploy was queued for a node; the payload is "node repo".
	queueChannel = "hookgate_deploys"
	// reconcileChannel: every node that deploys the repository named in the payload
	// should compare origin's head with what it has live now (its pin was lifted).
	reconcileChannel = "hookgate_reconcile"
)

// wakeNode tells node, when it is another gateway, that a deploy of repo is queued for
// it: on PostgreSQL the notification goes out when tx commits (and one identical
// notification per transaction is sent once). This gateway's own workers are told by the
// subscriber, after the commit (see noteQueued).
func (s *Store) wakeNode(ctx context.Context, tx *sql.Tx, node, repo string) error {
	if !s.pg || node == s.node {
		return nil
	}
	_, err := s.run(ctx, tx, notifyQueueSQL, queueChannel, node+" "+repo)
	return err
}

// QueuePollEvery is how often a gateway reads its queue whatever the notifications said
// (see WatchQueue): a notification is lost while the listening connection is down.
const QueuePollEvery = 5 * time.Second

// Watch says what WatchQueue calls.
type Watch struct {
	// Reconcile is called with a repository whose pin another gateway lifted, for this
	// node to check origin's head against its live commit (see Store.Unpin). It must not
	// block: WatchQueue waits for it.
	Reconcile func(repo string)
}

// WatchQueue tells the subscriber (OnQueued) the repository of each deploy queued for this
// node by another gateway, and calls w.Reconcile with each repository another gateway
// unpinned, until ctx ends. On PostgreSQL it listens on a connection of its own and, every
// poll interval and each time that connection is made again, also tells the subscriber of
// every repository with a deploy queued for this node. On SQLite it returns at once: there
// is no other gateway.
func (s *Store) WatchQueue(ctx context.Context, every time.Duration, w Watch, log *slog.Logger) {
	if !s.pg {
		return
	}
	poll := func() {
		pctx, cancel := context.WithTimeout(ctx, max(every, QueuePollEvery))
		defer cancel()
		repos, err := s.QueuedRepos(pctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("read the deploy queue", "err", err)
			}
			return
		}
		for _, r := range repos {
			s.publish(r)
		}
	}
	lastPoll := time.Now()
	pollNow := func() {
		poll()
		lastPoll = time.Now()
	}
	for ctx.Err() == nil {
		conn, err := s.listen(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("listen for queued deploys; polling meanwhile", "err", err, "every", every)
		}
		pollNow() // what was queued while no connection listened
		for conn != nil {
			// Every node hears every notification: under a stream of other nodes' ones
			// the poll must still come round, so the wait ends at the next poll's time.
			wctx, cancel := context.WithDeadline(ctx, lastPoll.Add(every))
			n, err := conn.WaitForNotification(wctx)
			cancel()
			switch {
			case err == nil:
				if n.Channel == reconcileChannel {
					w.Reconcile(n.Payload)
				} else if node, repo, ok := strings.Cut(n.Payload, " "); ok && node == s.node {
					s.publish(repo)
				}
				if time.Since(lastPoll) >= every {
					pollNow()
				}
				continue
			case ctx.Err() != nil:
				conn.Close(context.Background())
				return
			case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
				pollNow()
				continue
			}
			log.Warn("the connection listening for queued deploys broke; connecting again", "err", err)
			conn.Close(context.Background())
			conn = nil
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// listen opens a connection that listens on queueChannel.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, QueuePollEvery)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, s.pgConfig.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := pgxExec(cctx, conn, listenSQL); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}
