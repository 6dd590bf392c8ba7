package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/scripts/internal/harness"
)

// profileClone clones the shape's origin in this process with checkout.Update, the gateway's
// own code path, sampling the heap every 20 ms, and writes two heap profiles into
// e.profile: NAME-peak.pprof, taken after a forced collection when the live heap was
// largest, so its inuse figures say what held the memory, and NAME-end.pprof after the clone,
// whose alloc_space says where the clone's allocations came from. It prints the top of both.
func (e *env) profileClone(s shape) error {
	if err := os.MkdirAll(e.profile, 0o755); err != nil {
		return err
	}
	runtime.MemProfileRate = 64 << 10
	runtime.GC()
	dst := filepath.Join(e.tmp, s.name+"-profiled")
	peakFile := filepath.Join(e.profile, s.name+"-peak.pprof")
	endFile := filepath.Join(e.profile, s.name+"-end.pprof")

	stop := make(chan struct{})
	sampled := make(chan struct{})
	var maxInuse, maxLive uint64
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > maxInuse+(8<<20) {
				maxInuse = ms.HeapInuse
				// A collection first, so the profile's inuse figures are what is live now
				// rather than at the last collection; it disturbs the clone a little.
				runtime.GC()
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc <= maxLive {
					continue
				}
				maxLive = ms.HeapAlloc
				if f, err := os.Create(peakFile); err == nil {
					_ = pprof.Lookup("heap").WriteTo(f, 0)
					f.Close()
				}
			}
		}
	}()
	t0 := time.Now()
	res, err := checkout.Update(context.Background(), checkout.Spec{Name: s.name, Path: dst, Branch: "main", URL: e.origins[s.name], Depth: e.depth})
	took := time.Since(t0)
	close(stop)
	<-sampled
	if err != nil {
		return err
	}
	f, err := os.Create(endFile)
	if err != nil {
		return err
	}
	_ = pprof.Lookup("heap").WriteTo(f, 0)
	f.Close()
	self, _ := harness.ReadMemory(os.Getpid())
	fmt.Printf("%s: cloned %d files in %s; largest heap in use %s, largest live heap %s; this process's VmHWM %s\n",
		s.name, res.Changed, took.Round(time.Millisecond), mb(int64(maxInuse)), mb(int64(maxLive)), mb(self.Peak))
	for _, p := range []struct{ file, index string }{{peakFile, "inuse_space"}, {endFile, "alloc_space"}} {
		out, err := exec.Command("go", "tool", "pprof", "-sample_index="+p.index, "-top", "-nodecount=14", p.file).CombinedOutput()
		if err != nil {
			return fmt.Errorf("go tool pprof %s: %v\n%s", p.file, err, out)
		}
		fmt.Printf("\n%s of %s:\n%s\n", p.index, filepath.Base(p.file), out)
	}
	return os.RemoveAll(dst)
}
