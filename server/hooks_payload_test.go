package server_test

import (
	crand "crypto/rand"
	"encoding/base64"
	"fmt"
	"math/rand"
	"net/url"
	"sync"
	"testing"
)

// TestConcurrentPayloadsStoredIntact sends 400 deliveries from 48 clients at once, each
// with its own payload that S2 cannot shrink (so the store keeps it as received, in the
// very bytes the body was read into, and those buffers are reused by the next requests),
// a third of them form-encoded and the GUIDs repeating; every stored payload must be the
// one that was sent.
func TestConcurrentPayloadsStoredIntact(t *testing.T) {
	g := newGateway(t)
	const n = 400
	sent := make([][]byte, n)
	ids := make([]int64, n)
	var wg sync.WaitGroup
	slots := make(chan struct{}, 48)
	for i := range n {
		noise := make([]byte, 300+rand.Intn(3000))
		crand.Read(noise)
		sent[i] = fmt.Appendf(nil, `{"zen":"%s","n":%d}`, base64.StdEncoding.EncodeToString(noise), i)
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			d := delivery{event: "ping", guid: fmt.Sprintf("guid-%d", i%50), body: sent[i]}
			if i%3 == 0 {
				d.ctype = "application/x-www-form-urlencoded"
				d.body = []byte("payload=" + url.QueryEscape(string(sent[i])))
			}
			resp, body := g.send(d)
			if resp.StatusCode != 200 {
				t.Errorf("delivery %d: %d %v", i, resp.StatusCode, body)
				return
			}
			ids[i] = id(body["delivery_id"])
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i := range n {
		d, err := g.store.Delivery(t.Context(), ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if string(d.Payload) != string(sent[i]) {
			t.Fatalf("delivery %d (id %d): the stored payload is not the one sent", i, ids[i])
		}
	}
}
