// This file owns the repos tests' small shared helpers: incompressible file contents, a
// file read, and the scaled-down object limits of the delta-bomb tests. Git fixtures are
// internal/testkit's.
package repos

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/hookgate/hookgate/repos/checkout"
)

// randomFile returns n bytes that do not compress, the same for the same seed.
func randomFile(seed uint64, n int) []byte {
	var key [32]byte
	key[0] = byte(seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// smallLimits stand for server.max_object_size and max_fetch_size scaled down, so that a
// delta bomb of a few kilobytes shows the bound without building a gigabyte anywhere: a
// 512 KiB base and a delta that declares 64 MiB.
var smallLimits = checkout.ObjectLimits{MaxObjectSize: 1 << 20, MaxFetchSize: 8 << 20}

const (
	bombBase   = 512 << 10
	bombCopies = 128
)
