package repos

import (
	"bytes"
	"fmt"
	"testing"
)

// TestOutputSlowWatcherStaysBounded: a watcher that reads nothing while a deploy writes
// 1 MiB holds nothing; when it reads, it is told how much was dropped and gets the kept
// tail (what the store keeps too), never more than it asked for at once; the buffer the
// deploy writes into stays bounded however many watchers there are.
func TestOutputSlowWatcherStaysBounded(t *testing.T) {
	tb := newTailBuffer()
	o := Output{tb}
	var all bytes.Buffer
	waiting := o.Read(0, 1024) // a watcher now waiting for the first write
	for i := 0; all.Len() < 1<<20; i++ {
		line := fmt.Sprintf("line %06d\n", i)
		all.WriteString(line)
		tb.Write([]byte(line))
	}
	select {
	case <-waiting.Changed:
	default:
		t.Fatal("a write did not wake the waiting watcher")
	}
	if c := cap(tb.buf); c > 3*maxLog {
		t.Errorf("the output buffer holds %d bytes after 1 MiB written; want it bounded by about %d", c, 2*maxLog)
	}

	total := int64(all.Len())
	var got bytes.Buffer
	off := int64(0)
	c := o.Read(off, 16<<10)
	if want := total - maxLog; c.Skipped != want {
		t.Fatalf("slow watcher at 0 told %d bytes dropped, want %d", c.Skipped, want)
	}
	for {
		if len(c.Data) > 16<<10 {
			t.Fatalf("one read gave %d bytes, asked for at most %d", len(c.Data), 16<<10)
		}
		got.Write(c.Data)
		off = c.Next
		if len(c.Data) == 0 {
			break
		}
		c = o.Read(off, 16<<10)
		if c.Skipped != 0 {
			t.Fatalf("skipped %d bytes while reading at the writer's pace", c.Skipped)
		}
	}
	if off != total || !bytes.Equal(got.Bytes(), all.Bytes()[total-maxLog:]) {
		t.Fatalf("read up to %d of %d; the kept tail differs from the last %d bytes written", off, total, maxLog)
	}
	// The stored log (Snapshot) counts its offsets as the watchers do.
	start, saved := SavedOutput(mustSnapshot(tb))
	if start != total-maxLog || saved != got.String() {
		t.Errorf("stored log starts at offset %d (want %d) and equals the watcher's tail: %v", start, total-maxLog, saved == got.String())
	}

	if c.Done {
		t.Fatal("Done before the deploy ended")
	}
	tb.end()
	select {
	case <-c.Changed:
	default:
		t.Fatal("the end did not wake the waiting watcher")
	}
	if c := o.Read(off, 16<<10); !c.Done || len(c.Data) != 0 {
		t.Errorf("after the end: Done %v, %d bytes", c.Done, len(c.Data))
	}
}

func mustSnapshot(tb *tailBuffer) string { s, _ := tb.Snapshot(); return s }

// TestSavedOutputOfShortLog: a log that lost nothing starts at offset 0, whole.
func TestSavedOutputOfShortLog(t *testing.T) {
	for _, log := range []string{"", "hello\n", "[hookgate: x earlier bytes of output dropped]\nrest"} {
		if start, out := SavedOutput(log); start != 0 || out != log {
			t.Errorf("SavedOutput(%q) = %d, %q", log, start, out)
		}
	}
}
