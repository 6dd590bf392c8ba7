package server

import (
	"bytes"
	"testing"
)

// TestLargeBodyBuffersLeaveThePool: a buffer that grew past maxPooledBody is dropped when
// handed back, so a burst of large bodies does not stay resident through the pool; a
// small one is reset and kept. (A pooled buffer is found again by the next Get on the
// same P; the race detector drops some Puts at random, which can only hide a small one.)
func TestLargeBodyBuffersLeaveThePool(t *testing.T) {
	for range 100 {
		big := new(bytes.Buffer)
		big.Grow(maxPooledBody + 1)
		big.WriteString("large")
		putBodyBuf(big)
		if got := bodyBufs.Get().(*bytes.Buffer); got == big {
			t.Fatalf("a %d-byte buffer came back from the pool", big.Cap())
		}
	}
	kept := 0
	for range 100 {
		small := new(bytes.Buffer)
		small.WriteString("small")
		putBodyBuf(small)
		if got := bodyBufs.Get().(*bytes.Buffer); got == small {
			if got.Len() != 0 {
				t.Fatalf("a pooled buffer kept %q", got.Bytes())
			}
			kept++
		}
	}
	if kept == 0 {
		t.Fatal("no small buffer was ever pooled")
	}
}
