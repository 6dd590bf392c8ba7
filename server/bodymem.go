package server

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// DefaultMaxBodyMemory bounds the request bytes all hook requests together hold in memory
// when no bound is configured (or max_body, when that is larger).
const DefaultMaxBodyMemory = 64 << 20

// Reading a body: the buffer starts small and at most doubles, so what a request holds
// follows what it sent, never what its Content-Length claims; one read takes at most
// readChunk bytes, so a read cannot pull in much more than the bound has room for.
const (
	firstBodyAlloc = 512
	readChunk      = 32 << 10
)

// errOverloaded: the bodies being read already hold max_body_memory.
var errOverloaded = errors.New("request bodies in memory are at max_body_memory")

// bodyMemory is a byte semaphore over the request bodies held in memory by all hook
// requests at once. A request is charged for each chunk as it arrives, before it is kept,
// and gives its charge back when its handler ends; a chunk the bound has no room for is
// refused, so the total never exceeds the limit.
type bodyMemory struct {
	limit atomic.Int64
	used  atomic.Int64
}

// take charges n bytes, or reports false (charging nothing) when they do not fit.
func (m *bodyMemory) take(n int64) bool {
	for {
		u := m.used.Load()
		if u+n > m.limit.Load() {
			return false
		}
		if m.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (m *bodyMemory) give(n int64) { m.used.Add(-n) }

// room is what the bound has left now.
func (m *bodyMemory) room() int64 { return m.limit.Load() - m.used.Load() }

// body is one request's body as read so far, and what it is charged for.
type body struct {
	buf     *bytes.Buffer
	charged int64
	mem     *bodyMemory
}

// release gives the charge back and the buffer to the pool; nothing may refer to the
// body's bytes afterwards.
func (b *body) release() {
	b.mem.give(b.charged)
	b.charged = 0
	putBodyBuf(b.buf)
	b.buf = nil
}

// readBody reads the whole body as it arrives through a size-limited reader. It refuses at
// once, reading nothing, a body whose declared length is over max_body, or does not fit in
// what max_body_memory has left (for a body of unknown length: when nothing is left).
// Otherwise each chunk is charged to the bound as it arrives; errOverloaded when a chunk
// does not fit. The caller must release the body once nothing refers to it (the delivery is
// recorded and answered), whatever the error.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (*body, error) {
	b := &body{buf: bodyBufs.Get().(*bytes.Buffer), mem: &s.bodyMem}
	maxBody := s.maxBody.Load()
	if r.ContentLength > maxBody {
		return b, &http.MaxBytesError{Limit: maxBody}
	}
	if r.ContentLength == 0 {
		return b, nil // a server request with no body has http.NoBody; chunked ones say -1
	}
	if s.bodyMem.room() < max(r.ContentLength, 1) {
		return b, errOverloaded
	}
	rd := http.MaxBytesReader(w, r.Body, maxBody)
	buf := b.buf
	for {
		if buf.Available() == 0 {
			more := int64(max(buf.Cap(), firstBodyAlloc))
			if r.ContentLength > 0 {
				// Never more than the declared length still due (one byte to see EOF).
				more = min(more, max(r.ContentLength-int64(buf.Len()), 1))
			}
			buf.Grow(int(more))
		}
		p := buf.AvailableBuffer()
		p = p[:min(cap(p), readChunk)]
		n, err := rd.Read(p)
		if n > 0 {
			if !s.bodyMem.take(int64(n)) {
				return b, errOverloaded
			}
			b.charged += int64(n)
			buf.Write(p[:n])
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// bodyBufs recycles the buffers request bodies are read into. A push is several KB, read
// once per delivery: it was the largest allocation of the hook endpoint, a third of its
// bytes, for the garbage collector to sweep.
var bodyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody keeps the buffers of the rare large bodies out of the pool, so the memory a
// burst of large bodies took is given back to the garbage collector when they end.
const maxPooledBody = 256 << 10

func putBodyBuf(buf *bytes.Buffer) {
	if buf == nil || buf.Cap() > maxPooledBody {
		return
	}
	buf.Reset()
	bodyBufs.Put(buf)
}
