// This file owns the clone slots through the manager: max_clones bounds clones and the
// unshallowing fetch.
package repos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/store"
	"golang.org/x/sys/unix"
)

// TestClonesAreBounded configures three repositories that all clone at the first deploy,
// with four workers but max one clone, and follows the hidden clone folders through
// inotify: never two at once. The origin carries 8 MiB so that clones, unbounded, overlap.
func TestClonesAreBounded(t *testing.T) {
	e := newWorkerEnv(t)
	e.origin.Commit(map[string]string{"big.bin": string(randomFile(3, 8<<20))}, "big")
	parent := t.TempDir()
	var list []Repo
	for i := range 3 {
		name := fmt.Sprintf("c%d", i)
		list = append(list, Repo{Spec: checkout.Spec{Name: name, Path: filepath.Join(parent, name), URL: e.origin.Bare, Branch: "main"}, Timeout: time.Minute})
	}
	m := NewManager(e.store, list, Options{Workers: 4, MaxClones: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	var ds []*store.Delivery
	for _, r := range list {
		ds = append(ds, e.queue(t, r.Name, "g-"+r.Name))
	}
	// inotify keeps every creation and removal of the hidden clone folders, in order: the
	// count of those in flight is exact, not sampled.
	in, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(in)
	if _, err := unix.InotifyAddWatch(in, parent, unix.IN_CREATE|unix.IN_DELETE|unix.IN_MOVED_FROM); err != nil {
		t.Fatal(err)
	}
	m.Start()
	defer m.Stop(30 * time.Second)
	testkit.Eventually(t, 2*time.Minute, "all clones to finish", func() bool {
		for _, d := range ds {
			if e.deploy(t, d.DeployID).Status != store.DeploySucceeded {
				return false
			}
		}
		return true
	})
	var inFlight, peak, seen int
	var buf [64 * 1024]byte
	for {
		n, err := unix.Read(in, buf[:])
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := string(buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)])
			off += unix.SizeofInotifyEvent + int(ev.Len)
			switch {
			case ev.Mask&unix.IN_Q_OVERFLOW != 0:
				t.Fatal("inotify's queue overflowed; the count would be wrong")
			case !strings.Contains(name, ".hookgate-clone-"):
			case ev.Mask&unix.IN_CREATE != 0:
				seen++
				inFlight++
				peak = max(peak, inFlight)
			case ev.Mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0:
				inFlight--
			}
		}
	}
	if seen != len(list) {
		t.Fatalf("%d clone folders made, want one per repository (%d)", seen, len(list))
	}
	if p := peak; p != 1 {
		t.Fatalf("%d clones in flight at once, want max_clones = 1", p)
	}
}

// TestUnshallowTakesACloneSlot: the fetch that follows removing depth brings the whole
// history, as big as a clone, so it waits for one of max_clones' slots like a clone does;
// an ordinary update of a shallow or full checkout does not.
func TestUnshallowTakesACloneSlot(t *testing.T) {
	o, _ := testkit.NewShallowOrigin(t)
	spec := checkout.Spec{Name: "test", Path: o.Path, Branch: "main", URL: o.Bare, Depth: 1}
	e := newWorkerEnv(t)
	quiet := Options{Workers: 1, MaxClones: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	needs := func(s checkout.Spec) bool {
		t.Helper()
		m := NewManager(e.store, []Repo{{Spec: s, Timeout: time.Minute}}, quiet)
		return m.workers[s.Name].needsClone()
	}
	if !needs(spec) {
		t.Fatal("a checkout still to be cloned does not take a clone slot")
	}
	if _, err := checkout.Update(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	if needs(spec) {
		t.Fatal("an update of a shallow checkout that keeps depth takes a clone slot")
	}
	full := spec
	full.Depth = 0
	if !needs(full) {
		t.Fatal("the update that unshallows the checkout (depth removed) takes no clone slot")
	}
	if _, err := checkout.Update(context.Background(), full); err != nil {
		t.Fatal(err)
	}
	if needs(full) {
		t.Fatal("an update of a full checkout takes a clone slot")
	}
}
