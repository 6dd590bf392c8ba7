package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestExclusiveSQLite: one store WithExclusive per SQLite file. A second is refused at
// once with ErrDatabaseInUse naming the file and this process's pid, also when it reaches
// the file through a symbolic link; a store opened without it (a reader) still opens; once
// the first is closed, the lock file names no one and the next exclusive open succeeds.
func TestExclusiveSQLite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "data", "hookgate.db")
	first, err := Open(ctx, path, WithExclusive())
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "linked")
	if err := os.Symlink(filepath.Join(dir, "data"), link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, filepath.Join(link, "hookgate.db")} {
		second, err := Open(ctx, p, WithExclusive())
		if err == nil {
			second.Close()
			t.Fatalf("a second exclusive store opened %s", p)
		}
		if !errors.Is(err, ErrDatabaseInUse) || !strings.Contains(err.Error(), path+" is held by pid "+strconv.Itoa(os.Getpid())) {
			t.Fatalf("second exclusive open of %s: %v", p, err)
		}
	}
	reader, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("a store without WithExclusive: %v", err)
	}
	reader.Close()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path + ".lock"); err != nil || len(b) != 0 {
		t.Fatalf("the lock file after Close holds %q (%v), want empty", b, err)
	}
	again, err := Open(ctx, path, WithExclusive())
	if err != nil {
		t.Fatalf("exclusive open after the holder closed: %v", err)
	}
	again.Close()
}
