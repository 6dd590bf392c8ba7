// This file owns the watchdog that abandons a fetch: go-git ignores ctx outside the transport.
package checkout

import (
	"context"
	"fmt"
	"sync"
)

// abandoned maps a checkout path to a channel closed when a fetch or clone that
// Update stopped waiting for (on timeout) has really ended; it may still be
// writing into the repository, so the next Update there waits for it.
var abandoned = struct {
	sync.Mutex
	ops map[string]chan struct{}
}{ops: map[string]chan struct{}{}}

func waitForAbandoned(ctx context.Context, path string) error {
	abandoned.Lock()
	ch := abandoned.ops[path]
	abandoned.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("an earlier timed-out fetch or clone of %s is still running: %w", path, ctx.Err())
	}
}

// withWatchdog runs fn, which must honour ctx where it can, but returns when ctx
// ends even if fn does not: go-git's SSH transport dials and handshakes without
// a context. The next Update of path waits for an abandoned fn to end.
func withWatchdog(ctx context.Context, path string, fn func() error) error {
	_, err := watchdog(ctx, path, fn, nil)
	return err
}

// watchdog is withWatchdog that also says whether it gave up on fn; if so, it runs
// after (when not nil) once fn has really returned, since only then are the
// resources fn uses free to release.
func watchdog(ctx context.Context, path string, fn func() error, after func()) (gaveUp bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("not started: %w", err)
	}
	done := make(chan struct{})
	var fnErr error
	go func() {
		defer close(done)
		fnErr = fn()
	}()
	select {
	case <-done:
		return false, fnErr
	case <-ctx.Done():
	}
	select {
	case <-done: // finished at the same moment: keep its result
		return false, fnErr
	default:
	}
	abandoned.Lock()
	abandoned.ops[path] = done
	abandoned.Unlock()
	go func() {
		<-done
		if after != nil {
			after()
		}
		abandoned.Lock()
		if abandoned.ops[path] == done {
			delete(abandoned.ops, path)
		}
		abandoned.Unlock()
	}()
	return true, fmt.Errorf("gave up (%w); it goes on in the background and the next update waits for it", ctx.Err())
}
