// This file owns GET /api/v1/deploys/:id/log: a deploy's output as a server-sent event
// stream, live while the deploy runs, then its end.
package server

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hookgate/hookgate/app"
)

const (
	// logChunk bounds one output event, and so what one watcher holds at a time.
	logChunk = 16 << 10
	// logPoll is how often the store is read for a deploy not running here (queued, or
	// run by another node, which saves its output about every second).
	logPoll = time.Second
	// logKeepAlive is how often a quiet stream gets a comment, so that proxies and the
	// client see the connection alive.
	logKeepAlive = 15 * time.Second
)

// apiDeployLog streams deploy :id's output as text/event-stream: "output" events whose id
// is the byte offset after their data, "gap" when output was dropped before the client
// read it, and one "end" event with the deploy's status. Last-Event-ID resumes after the
// offset it names.
func (s *Server) apiDeployLog(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var off int64
	if v := c.GetHeader("Last-Event-ID"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(c, http.StatusBadRequest, "invalid_parameter", "Last-Event-ID: must be a byte offset this stream gave out")
			return
		}
		off = n
	}
	ctx, cancel := context.WithCancel(c.Request.Context())
	defer cancel()
	defer context.AfterFunc(s.streams, cancel)() // a shutdown ends the stream (see HTTPServer)
	dp, err := s.store.Deploy(ctx, id)
	if err != nil {
		s.writeStoreError(c, err)
		return
	}
	// The server's WriteTimeout would cut a long deploy's stream: this response has none.
	rc := http.NewResponseController(c.Writer)
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		s.log.Warn("deploy log stream: lift write deadline", "err", err)
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass each event on as it comes
	c.Status(http.StatusOK)
	w := &sseWriter{rc: rc, w: c.Writer}
	w.comment("deploy " + strconv.FormatInt(id, 10))

	lastWrite := time.Now()
	for {
		if out, ok := s.app.DeployOutput(id); ok {
			if off, err = w.live(ctx, out, off); err != nil {
				return
			}
		}
		if dp, err = s.store.Deploy(ctx, id); err != nil {
			return
		}
		start, saved := app.SavedOutput(dp.Log)
		if off < start {
			w.gap(off, start)
			off = start
		}
		if rel := off - start; rel < int64(len(saved)) {
			for _, chunk := range chunks([]byte(saved[rel:]), logChunk) {
				off += int64(len(chunk))
				w.output(off, chunk)
			}
			lastWrite = time.Now()
		}
		if !app.ActiveStatus(dp.Status) { // waiting and verifying are not the end either
			w.event("end", "", []byte(dp.Status))
			return
		}
		if time.Since(lastWrite) >= logKeepAlive {
			w.comment("")
			lastWrite = time.Now()
		}
		if w.err != nil || sleep(ctx, logPoll) != nil {
			return
		}
	}
}

// live streams out from off until the deploy ends (or, when this deploy is not followed to
// its end, ctx ends); it returns the offset reached.
func (w *sseWriter) live(ctx context.Context, out app.Output, off int64) (int64, error) {
	keep := time.NewTicker(logKeepAlive)
	defer keep.Stop()
	for {
		ch := out.Read(off, logChunk)
		if ch.Skipped > 0 {
			w.gap(off, off+ch.Skipped)
		}
		off = ch.Next
		if len(ch.Data) > 0 {
			w.output(off, ch.Data)
		}
		if w.err != nil {
			return off, w.err
		}
		if ch.Done {
			return off, nil
		}
		if len(ch.Data) > 0 {
			continue
		}
		select {
		case <-ch.Changed:
		case <-keep.C:
			w.comment("")
		case <-ctx.Done():
			return off, ctx.Err()
		}
	}
}

// sseWriter writes server-sent events, each flushed; err is the first write error (the
// client went away), after which nothing is written.
type sseWriter struct {
	rc  *http.ResponseController
	w   gin.ResponseWriter
	buf bytes.Buffer
	err error
}

// output writes one "output" event: data, whose end is at byte offset next. A line break
// ends each data line; a carriage return, which the format also reads as one, is sent as
// one too.
func (w *sseWriter) output(next int64, data []byte) {
	w.event("output", strconv.FormatInt(next, 10), data)
}

// gap tells the client that output from from to to was dropped before it was read.
func (w *sseWriter) gap(from, to int64) {
	w.event("gap", strconv.FormatInt(to, 10), []byte(fmt.Sprintf("%d bytes of output dropped", to-from)))
}

func (w *sseWriter) event(name, id string, data []byte) {
	w.buf.Reset()
	if id != "" {
		w.buf.WriteString("id: " + id + "\n")
	}
	w.buf.WriteString("event: " + name + "\n")
	for {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			break
		}
		w.buf.WriteString("data: ")
		w.buf.Write(data[:i])
		w.buf.WriteByte('\n')
		data = data[i+1:]
	}
	w.buf.WriteString("data: ")
	w.buf.Write(data)
	w.buf.WriteString("\n\n")
	w.flush()
}

func (w *sseWriter) comment(text string) {
	w.buf.Reset()
	w.buf.WriteString(": " + text + "\n\n")
	w.flush()
}

func (w *sseWriter) flush() {
	if w.err != nil {
		return
	}
	if _, err := w.w.Write(w.buf.Bytes()); err != nil {
		w.err = err
		return
	}
	w.err = w.rc.Flush()
}

// chunks splits b into pieces of at most n bytes.
func chunks(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	if len(b) > 0 {
		out = append(out, b)
	}
	return out
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
