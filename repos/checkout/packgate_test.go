package checkout

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
)

// smallLimits stand for server.max_object_size and max_fetch_size scaled down, so that a
// delta bomb of a few kilobytes shows the bound without building a gigabyte anywhere: a
// 512 KiB base and a delta that declares 64 MiB.
var smallLimits = ObjectLimits{MaxObjectSize: 1 << 20, MaxFetchSize: 8 << 20}

const (
	bombBase   = 512 << 10
	bombCopies = 128
)

// bombFixture is a checkout of an origin whose main then moves to a commit holding a
// delta bomb.
func bombFixture(t *testing.T, clone bool) (*fixture, string) {
	t.Helper()
	f := newFixture(t, map[string]string{"app.txt": "v1\n"}, clone)
	parent := testkit.Git(t, f.Bare, "rev-parse", "main")
	bomb, err := testkit.InstallDeltaBomb(f.Bare, "main", parent, bombBase, bombCopies)
	if err != nil {
		t.Fatal(err)
	}
	return f, bomb
}

func TestFetchRefusesDeltaBomb(t *testing.T) {
	for _, clone := range []bool{true, false} {
		t.Run(fmt.Sprintf("existing checkout %v", clone), func(t *testing.T) {
			f, bomb := bombFixture(t, clone)
			big := testkit.Git(t, f.Bare, "rev-parse", bomb+":big.bin")
			var before string
			if clone {
				before = f.head()
			}
			s := f.spec(ModeFastForward)
			s.URL = f.Bare
			s.Limits = smallLimits
			_, err := Update(context.Background(), s)
			if !errors.Is(err, ErrObjectTooLarge) || !strings.Contains(err.Error(), "fetched pack") ||
				!strings.Contains(err.Error(), "server.max_object_size") || !strings.Contains(err.Error(), "64MB") {
				t.Fatalf("Update = %v, want the fetch refused naming server.max_object_size and the 64MB the delta declares", err)
			}
			if !clone {
				if f.exists("") {
					t.Fatal("a refused clone left a checkout behind")
				}
				return
			}
			if got := f.head(); got != before {
				t.Fatalf("HEAD moved from %s to %s", before, got)
			}
			if f.exists("big.bin") {
				t.Fatal("big.bin was written")
			}
			// Nothing of the refused pack is kept, not even go-git's temporary file.
			if err := exec.Command("git", "-C", f.Path, "cat-file", "-e", big).Run(); err == nil {
				t.Fatal("the refused pack's big.bin is in the checkout's objects")
			}
			if tmp, _ := filepath.Glob(filepath.Join(f.Path, ".git", "objects", "pack", "tmp_*")); len(tmp) > 0 {
				t.Fatalf("left behind: %v", tmp)
			}
		})
	}
}

// TestFetchWithinLimits is the same pack with room for it: the gate passes a pack it
// accepts on to go-git unchanged.
func TestFetchWithinLimits(t *testing.T) {
	f, bomb := bombFixture(t, true)
	s := f.spec(ModeFastForward)
	s.Limits = ObjectLimits{MaxObjectSize: 64 << 20, MaxFetchSize: 128 << 20}
	res, err := Update(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if res.To != bomb {
		t.Fatalf("moved to %s, want %s", res.To, bomb)
	}
	if got := testkit.Git(t, f.Path, "status", "--porcelain"); got != "" {
		t.Fatalf("git status after the update:\n%s", got)
	}
}

func TestFetchRefusesTooMuchInAll(t *testing.T) {
	f := newFixture(t, map[string]string{"app.txt": "v1\n"}, true)
	files := map[string]string{}
	rnd := rand.NewChaCha8([32]byte{2})
	for i := range 12 {
		// 12 objects of 800 KiB, each under the 1 MiB limit, 9.4 MiB in all; random, so
		// go-git has been given megabytes of the pack when the limit is reached.
		part := make([]byte, 800<<10)
		rnd.Read(part)
		files[fmt.Sprintf("part%d.bin", i)] = string(part)
	}
	f.Write(files)
	f.CommitAll("many parts")
	s := f.spec(ModeFastForward)
	s.Limits = smallLimits
	_, err := Update(context.Background(), s)
	if !errors.Is(err, ErrObjectTooLarge) || !strings.Contains(err.Error(), "server.max_fetch_size") {
		t.Fatalf("Update = %v, want a refusal naming server.max_fetch_size", err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(f.Path, ".git", "objects", "pack", "tmp_*")); len(tmp) > 0 {
		t.Fatalf("left behind: %v", tmp)
	}
}

// TestApplyRefusesBigBlobAlreadyFetched: an object that came in before the limit (here
// fetched by git itself) is not built by the update either; its size is read from the
// delta's header.
func TestApplyRefusesBigBlobAlreadyFetched(t *testing.T) {
	f, _ := bombFixture(t, true)
	testkit.Git(t, f.Path, "fetch", "-q", "origin")
	before := f.head()
	s := f.spec(ModeFastForward)
	s.Limits = smallLimits
	_, err := Update(context.Background(), s)
	if !errors.Is(err, ErrObjectTooLarge) || !strings.Contains(err.Error(), "big.bin") || !strings.Contains(err.Error(), "server.max_object_size") {
		t.Fatalf("Update = %v, want big.bin refused naming server.max_object_size", err)
	}
	if f.head() != before || f.exists("big.bin") {
		t.Fatal("the refused update moved HEAD or wrote big.bin")
	}
}

// TestFetchRefusesBigBlobFromLocalOrigin: a refused pack bigger than a pipe's buffer. With
// a local origin go-git waits for git upload-pack to exit, which waits for its output to
// be read; a refusal that stopped reading hung the fetch until the deploy's timeout, and
// every later update of the checkout behind it.
func TestFetchRefusesBigBlobFromLocalOrigin(t *testing.T) {
	f := newFixture(t, map[string]string{"app.txt": "v1\n"}, true)
	// 3 MiB that do not compress, so the pack is as big.
	big := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{1}).Read(big)
	f.Write(map[string]string{"big.bin": string(big)})
	f.CommitAll("big")
	s := f.spec(ModeFastForward)
	s.Limits = smallLimits
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Update(ctx, s)
	if !errors.Is(err, ErrObjectTooLarge) || !strings.Contains(err.Error(), "a blob of 3MB is in the fetched pack, over server.max_object_size (1MB)") {
		t.Fatalf("Update = %v, want the 3MB blob refused naming server.max_object_size", err)
	}
	// The checkout is not stuck behind an abandoned fetch: with room, it updates.
	s.Limits = ObjectLimits{}
	if _, err := Update(context.Background(), s); err != nil || f.read("big.bin") != string(big) {
		t.Fatalf("update with the default limits: %v", err)
	}
}
