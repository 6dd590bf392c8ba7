package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
)

// maxBatch bounds how many deliveries share one commit.
const maxBatch = 128

// errClosed is returned to writers that arrive after Close.
var errClosed = errors.New("store is closed")

// batcher is the group commit: one goroutine owns delivery writes, takes every request
// waiting at that moment, records them in one transaction and answers each after the
// commit. Under load many deliveries share one fsync; alone, a delivery commits at once.
type batcher struct {
	s    *Store
	reqs chan *writeReq
	quit chan struct{}
	done chan struct{}

	// mu orders submits against close: once closed is set no request can be sent, so
	// every request sent is drained and answered.
	mu     sync.RWMutex
	closed bool
}

type writeReq struct {
	d        *Delivery
	headers  string  // d.Headers as JSON
	payload  []byte  // d.Payload as stored, nil when there is none
	encoding string  // of payload
	buf      *[]byte // from encodeBufs, holding payload; see release
	// others are the deploys d joined beyond d.DeployID, one per other node that deploys
	// its repository (see prepareDelivery).
	others []int64
	err    chan error
}

func newBatcher(s *Store) *batcher {
	b := &batcher{
		s:    s,
		reqs: make(chan *writeReq, maxBatch),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	go b.run()
	return b
}

func (b *batcher) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.quit)
	}
	b.mu.Unlock()
	<-b.done
}

func (b *batcher) submit(ctx context.Context, r *writeReq) error {
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return errClosed
	}
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
	}
	b.mu.RUnlock()
	// Once submitted, the write happens whatever the caller's context does; waiting for
	// its result is what makes "recorded before answered" true.
	return <-r.err
}

func (b *batcher) run() {
	defer close(b.done)
	batch := make([]*writeReq, 0, maxBatch)
	for {
		select {
		case r := <-b.reqs:
			batch = append(batch[:0], r)
			// Let the goroutines that are ready to run have their turn before the batch
			// is closed: under load they are handlers about to submit, and a larger batch
			// shares one commit among more deliveries. When none is waiting for a CPU
			// this returns at once, so a lone delivery still commits without delay.
			runtime.Gosched()
		drain:
			for len(batch) < maxBatch {
				select {
				case r := <-b.reqs:
					batch = append(batch, r)
				default:
					break drain
				}
			}
			b.commit(batch)
		case <-b.quit:
			for {
				select {
				case r := <-b.reqs:
					b.commit([]*writeReq{r})
				default:
					return
				}
			}
		}
	}
}

func (b *batcher) commit(batch []*writeReq) {
	errs := b.write(batch)
	for i, r := range batch {
		r.err <- errs[i]
	}
}

// write records the batch in one transaction. The batch is first written whole; only when
// one delivery fails is it rolled back and written again with a savepoint per delivery, so
// one bad row cannot fail the others. A savepoint around every delivery of every batch
// costs a copy of each page it touches (the sub-journal), in the one goroutine that all
// deliveries wait for.
func (b *batcher) write(batch []*writeReq) []error {
	if len(batch) > 1 {
		if errs, ok := b.writeAll(batch); ok {
			return errs
		}
	}
	return b.writeEach(batch)
}

// writeAll records the batch in one transaction without savepoints. It reports false,
// having rolled back and restored every delivery, when one of them failed on its own.
func (b *batcher) writeAll(batch []*writeReq) ([]error, bool) {
	ctx := context.Background()
	errs := make([]error, len(batch))
	tx, err := b.s.wdb.BeginTx(ctx, nil)
	if err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("record delivery: begin: %w", err)
		}
		return errs, true
	}
	defer tx.Rollback()
	defer b.s.forget(tx)
	if err := b.s.lockRepos(ctx, tx, acceptedRepos(batch)); err != nil {
		return nil, false
	}
	saved := make([]Delivery, len(batch))
	for i, r := range batch {
		saved[i] = *r.d
	}
	restore := func() {
		for i, r := range batch {
			*r.d = saved[i]
		}
	}
	st := newBatchState()
	if err := b.s.lookUpGUIDs(ctx, tx, st, batch); err != nil {
		return nil, false
	}
	for _, r := range batch {
		if err := b.s.prepareDelivery(ctx, tx, st, r); err != nil {
			restore()
			return nil, false
		}
	}
	if err := b.s.insertDeliveries(ctx, tx, batch); err != nil {
		restore()
		return nil, false
	}
	if err := b.s.commit(tx); err != nil {
		restore()
		for i := range errs {
			errs[i] = fmt.Errorf("record delivery: commit: %w", err)
		}
	}
	return errs, true
}

// writeEach records the batch in one transaction with a savepoint per delivery.
func (b *batcher) writeEach(batch []*writeReq) []error {
	ctx := context.Background()
	errs := make([]error, len(batch))
	fail := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	tx, err := b.s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fail(fmt.Errorf("record delivery: begin: %w", err))
	}
	defer tx.Rollback()
	defer b.s.forget(tx)
	if err := b.s.lockRepos(ctx, tx, acceptedRepos(batch)); err != nil {
		return fail(fmt.Errorf("record delivery: lock: %w", err))
	}
	saved := make([]Delivery, len(batch))
	st := newBatchState()
	for i, r := range batch {
		saved[i] = *r.d
		if len(batch) > 1 {
			if _, err := b.s.run(ctx, tx, savepointSQL); err != nil {
				return fail(fmt.Errorf("record delivery: savepoint: %w", err))
			}
		}
		errs[i] = b.s.recordDelivery(ctx, tx, st, r)
		if len(batch) == 1 && errs[i] != nil {
			// Nothing else to commit; and on PostgreSQL the failed statement has ended
			// the transaction, whose commit would only report that instead.
			*r.d = saved[i]
			return errs
		}
		if len(batch) > 1 {
			if errs[i] != nil {
				if _, err := b.s.run(ctx, tx, rollbackToSQL); err != nil {
					return fail(fmt.Errorf("record delivery: rollback to savepoint: %w", err))
				}
				// The rollback may have undone a deploy this delivery queued.
				clear(st.queued)
				*r.d = saved[i]
			}
			if _, err := b.s.run(ctx, tx, releaseSQL); err != nil {
				return fail(fmt.Errorf("record delivery: release savepoint: %w", err))
			}
		}
	}
	if err := b.s.commit(tx); err != nil {
		for i, r := range batch {
			*r.d = saved[i]
		}
		return fail(fmt.Errorf("record delivery: commit: %w", err))
	}
	return errs
}

// acceptedRepos lists the repositories of the batch's deliveries that policy.Screen lets
// through (see screen): those it may queue a deploy of.
func acceptedRepos(batch []*writeReq) []string {
	var repos []string
	for _, r := range batch {
		dec, ok := screen(r.d)
		switch {
		case !ok:
		case dec.Targets == nil:
			repos = append(repos, r.d.Repo)
		default:
			for _, t := range dec.Targets {
				if t.Status == DeliveryAccepted {
					repos = append(repos, t.Repo)
				}
			}
		}
	}
	return repos
}
