// This file owns the live output of running deploys: what a watcher of a deploy reads while
// it runs (the API's log stream), from the one buffer the deploy writes into.
package repos

import (
	"strconv"
	"strings"
)

// Output is a running deploy's output as watchers read it. Every watcher reads the deploy's
// one tail buffer at its own offset: no copy is kept per watcher, so a thousand watchers
// hold no more than one, and a watcher that falls behind the kept tail (maxLog bytes) skips
// to it (Chunk.Skipped) instead of holding the output for itself.
type Output struct{ t *tailBuffer }

// Chunk is what one Read of an Output returns.
type Chunk struct {
	Data []byte
	// Skipped is how many bytes before Data were asked for but are no longer kept.
	Skipped int64
	// Next is the offset after Data: the offset to read from next.
	Next int64
	// Done: the deploy has ended, and Data is the last of its output.
	Done bool
	// Changed is closed by the next write to the output or by its end; wait on it when
	// Data is empty and not Done.
	Changed <-chan struct{}
}

// Read returns the output from byte offset off (counted from the deploy's first byte), at
// most max bytes of it.
func (o Output) Read(off int64, max int) Chunk {
	return o.t.read(off, max)
}

// read is Output.Read.
func (t *tailBuffer) read(off int64, max int) Chunk {
	t.mu.Lock()
	defer t.mu.Unlock()
	end := t.dropped + int64(len(t.buf))
	first := max64(t.dropped, end-maxLog) // what Snapshot keeps, and so the store
	var c Chunk
	if off < first {
		c.Skipped, off = first-off, first
	}
	if off > end {
		off = end
	}
	n := min(end-off, int64(max))
	start := off - t.dropped
	c.Data = append([]byte(nil), t.buf[start:start+n]...)
	c.Next = off + n
	c.Done = t.ended && c.Next == end
	if t.changed == nil {
		t.changed = make(chan struct{})
		if t.ended {
			close(t.changed)
		}
	}
	c.Changed = t.changed
	return c
}

// wakeWatchers closes the channel watchers wait on (t.mu held).
func (t *tailBuffer) wakeWatchers() {
	if t.changed != nil {
		close(t.changed)
		t.changed = nil
	}
}

// end marks the output complete and wakes its watchers.
func (t *tailBuffer) end() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ended = true
	t.wakeWatchers()
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// droppedPrefix starts a saved log that lost its beginning (see tailBuffer.Snapshot).
const droppedPrefix = "[hookgate: "
const droppedSuffix = " earlier bytes of output dropped]\n"

// SavedOutput splits a log as the store keeps it into the offset of its first byte of
// output and that output, so that a stored log and a running deploy's Output count
// offsets alike.
func SavedOutput(log string) (int64, string) {
	if !strings.HasPrefix(log, droppedPrefix) {
		return 0, log
	}
	rest := log[len(droppedPrefix):]
	i := strings.Index(rest, droppedSuffix)
	if i < 0 {
		return 0, log
	}
	n, err := strconv.ParseInt(rest[:i], 10, 64)
	if err != nil || n < 0 {
		return 0, log
	}
	return n, rest[i+len(droppedSuffix):]
}

// live registers out as deploy id's output while it runs.
func (m *Manager) live(id int64, out *tailBuffer) func() {
	m.liveMu.Lock()
	m.outputs[id] = out
	m.liveMu.Unlock()
	return func() {
		m.liveMu.Lock()
		delete(m.outputs, id)
		m.liveMu.Unlock()
	}
}

// Output returns the output of deploy id while it runs on this gateway. Once the deploy's
// result is recorded the output ends (Chunk.Done) and the store has the whole of it.
func (m *Manager) Output(id int64) (Output, bool) {
	m.liveMu.Lock()
	defer m.liveMu.Unlock()
	t, ok := m.outputs[id]
	return Output{t}, ok
}
