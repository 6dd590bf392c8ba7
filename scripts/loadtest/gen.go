package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/scripts/internal/harness"
)

// request is one signed delivery as raw HTTP/1.1 bytes, split around the delivery GUID so
// each request carries a distinct X-GitHub-Delivery without re-signing: the signature
// covers the body only, as GitHub's does.
type request struct {
	head, tail []byte // before and after the GUID
}

// newRequest builds the request GitHub would send for body to path, with the headers
// GitHub sends (which hookgate records).
func newRequest(host, path string, body []byte, secret []byte) request {
	var h bytes.Buffer
	fmt.Fprintf(&h, "POST %s HTTP/1.1\r\nHost: %s\r\n", path, host)
	h.WriteString("User-Agent: GitHub-Hookshot/7b6c1ad\r\nAccept: */*\r\n")
	h.WriteString("Content-Type: application/json\r\n")
	h.WriteString("X-GitHub-Event: push\r\nX-GitHub-Hook-ID: 492039781\r\n")
	h.WriteString("X-GitHub-Hook-Installation-Target-ID: 719385402\r\n")
	h.WriteString("X-GitHub-Hook-Installation-Target-Type: repository\r\n")
	fmt.Fprintf(&h, "X-Hub-Signature-256: %s\r\n", harness.Sign(secret, body))
	fmt.Fprintf(&h, "Content-Length: %d\r\n", len(body))
	h.WriteString("X-GitHub-Delivery: ")
	var t bytes.Buffer
	t.WriteString("\r\n\r\n")
	t.Write(body)
	return request{head: h.Bytes(), tail: t.Bytes()}
}

// result is what one load run saw.
type result struct {
	Elapsed   time.Duration
	Status    map[int]int64 // answers by HTTP status
	Errors    int64         // connection or protocol errors (the request got no answer)
	FirstErr  error
	Latencies []time.Duration // of every answered request, sorted (nil from wrk)
	P50, P99  time.Duration
}

// OK counts the 2xx answers.
func (r result) OK() int64 {
	var n int64
	for code, c := range r.Status {
		if code/100 == 2 {
			n += c
		}
	}
	return n
}

// NotOK counts the answers that were not 2xx.
func (r result) NotOK() int64 {
	var n int64
	for code, c := range r.Status {
		if code/100 != 2 {
			n += c
		}
	}
	return n
}

// Rate is 2xx answers per second.
func (r result) Rate() float64 { return float64(r.OK()) / r.Elapsed.Seconds() }

// guidSeq keeps GUIDs distinct across the runs of one script invocation.
var guidSeq atomic.Uint64

// load keeps conns keep-alive connections busy against addr for d, one request in flight
// on each, the way wrk does. Each connection finishes its request in flight when d is up,
// so every delivery the server recorded got its answer counted: the counts can be compared
// with the database exactly.
func load(addr string, req request, conns int, d time.Duration) result {
	var (
		mu  sync.Mutex
		all = result{Status: map[int]int64{}}
		wg  sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := loadConn(addr, req, deadline)
			mu.Lock()
			defer mu.Unlock()
			for code, n := range r.Status {
				all.Status[code] += n
			}
			all.Errors += r.Errors
			if all.FirstErr == nil {
				all.FirstErr = r.FirstErr
			}
			all.Latencies = append(all.Latencies, r.Latencies...)
		}()
	}
	wg.Wait()
	all.Elapsed = time.Since(start)
	slices.Sort(all.Latencies)
	all.P50 = harness.Percentile(all.Latencies, 50)
	all.P99 = harness.Percentile(all.Latencies, 99)
	return all
}

func loadConn(addr string, req request, deadline time.Time) result {
	r := result{Status: map[int]int64{}, Latencies: make([]time.Duration, 0, 1<<14)}
	var (
		conn net.Conn
		br   *bufio.Reader
		buf  = make([]byte, 0, len(req.head)+64+len(req.tail))
	)
	fail := func(err error) {
		r.Errors++
		if r.FirstErr == nil {
			r.FirstErr = err
		}
		if conn != nil {
			conn.Close()
			conn = nil
		}
	}
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for time.Now().Before(deadline) {
		if conn == nil {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				fail(err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			conn, br = c, bufio.NewReaderSize(c, 4096)
		}
		n := guidSeq.Add(1)
		buf = append(buf[:0], req.head...)
		buf = fmt.Appendf(buf, "0b5e1dad-%04x-4%03x-8%03x-%012x", n>>40&0xffff, n>>28&0xfff, n>>16&0xfff, n&0xffffffffffff)
		buf = append(buf, req.tail...)
		t0 := time.Now()
		if _, err := conn.Write(buf); err != nil {
			fail(err)
			continue
		}
		code, closing, err := readResponse(br)
		if err != nil {
			fail(err)
			continue
		}
		r.Latencies = append(r.Latencies, time.Since(t0))
		r.Status[code]++
		if closing {
			conn.Close()
			conn = nil
		}
	}
	return r
}

// readResponse reads one HTTP/1.1 response with a Content-Length (what net/http sends for
// a small answer) and returns its status code, discarding the body, and whether the
// server closes the connection after it.
func readResponse(br *bufio.Reader) (code int, closing bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	if code, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	length := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(k, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return 0, false, fmt.Errorf("bad Content-Length %q", v)
			}
		}
		if ok && bytes.EqualFold(k, []byte("Connection")) && bytes.EqualFold(bytes.TrimSpace(v), []byte("close")) {
			closing = true
		}
	}
	if length < 0 {
		return 0, false, errors.New("response without Content-Length")
	}
	if _, err := br.Discard(length); err != nil {
		return 0, false, err
	}
	return code, closing, nil
}
