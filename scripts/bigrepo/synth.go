package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"strings"

	"github.com/hookgate/hookgate/scripts/internal/harness"
)

// shape is one synthetic repository: bins binary files of binSize random bytes under
// assets/, texts text files spread over dirs folders under src/, and commits commits on
// main. The first commit adds every file; each later one changes one to three text files.
type shape struct {
	name     string
	bins     int
	binSize  int64
	texts    int
	dirs     int
	commits  int
	describe string
}

func (s shape) binPath(i int) string { return fmt.Sprintf("assets/blob%04d.bin", i) }

func (s shape) textPath(i int) string {
	return fmt.Sprintf("src/dir%03d/file%05d.txt", i%max(s.dirs, 1), i)
}

// words make the text files look like source: compressible, and different per file and
// version so deltas between versions are small but real.
var words = strings.Fields("the deploy gateway checks each push and moves the checkout forward " +
	"func return error context branch commit tree blob index worker queue config server " +
	"static assets build output node modules vendor lock file")

// textContent is file i's content at version v, 200-2,000 bytes, the same in every run.
func textContent(i, v int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	n := 200 + r.IntN(1800)
	var b strings.Builder
	fmt.Fprintf(&b, "// file %d version %d\n", i, v)
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		if r.IntN(10) == 0 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	b.WriteByte('\n')
	return []byte(b.String())
}

// writeRandom writes n bytes of seed's ChaCha8 stream: incompressible, like images, and
// the same in every run.
func writeRandom(w io.Writer, seed uint64, n int64) error {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	r := rand.NewChaCha8(key)
	buf := make([]byte, 1<<16)
	for n > 0 {
		chunk := buf[:min(int64(len(buf)), n)]
		_, _ = r.Read(chunk)
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		n -= int64(len(chunk))
	}
	return nil
}

// fastImport runs `git fast-import` in the bare repository dir, fed by stream. Blobs over
// 1 MiB are stored whole, without a delta search, as the origin's config asks of
// pack-objects too (core.bigFileThreshold): searching deltas in random data only costs time.
func fastImport(ctx context.Context, dir string, stream func(w *bufio.Writer) error) error {
	cmd := exec.CommandContext(ctx, "git", "-c", "fastimport.unpackLimit=0", "fast-import", "--quiet", "--big-file-threshold=1m")
	cmd.Dir, cmd.Env = dir, harness.GitEnv()
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	w := bufio.NewWriterSize(in, 1<<20)
	serr := stream(w)
	if serr == nil {
		serr = w.Flush()
	}
	in.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("git fast-import: %v\n%s", err, out.String())
	}
	return serr
}

func data(w *bufio.Writer, b []byte) {
	fmt.Fprintf(w, "data %d\n", len(b))
	w.Write(b)
	w.WriteByte('\n')
}

// history writes the shape's whole history as a fast-import stream.
func (s shape) history(w *bufio.Writer) error {
	for c := 1; c <= s.commits; c++ {
		fmt.Fprintf(w, "commit refs/heads/main\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\n", c, 1_600_000_000+c*60)
		data(w, fmt.Appendf(nil, "commit %d", c))
		if c > 1 {
			fmt.Fprintf(w, "from :%d\n", c-1)
		}
		if c == 1 {
			for i := range s.bins {
				fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n", s.binPath(i), s.binSize)
				if err := writeRandom(w, uint64(i), s.binSize); err != nil {
					return err
				}
				w.WriteByte('\n')
			}
			for i := range s.texts {
				fmt.Fprintf(w, "M 100644 inline %s\n", s.textPath(i))
				data(w, textContent(i, 0))
			}
			continue
		}
		for k := range 1 + c%3 {
			i := (c*7 + k*13) % s.texts
			fmt.Fprintf(w, "M 100644 inline %s\n", s.textPath(i))
			data(w, textContent(i, c))
		}
	}
	return nil
}

// push writes one more commit on main as a fast-import stream: two text files changed, one
// added, and, when the shape has binary files, one of them rewritten with new random bytes
// (so the 100 MiB case's update moves 100 MiB).
func (s shape) push(w *bufio.Writer, n int) error {
	fmt.Fprintf(w, "commit refs/heads/main\ncommitter Bench <bench@example.com> %d +0000\n", 1_700_000_000+n*60)
	data(w, fmt.Appendf(nil, "push %d", n))
	w.WriteString("from refs/heads/main^0\n")
	for k := range 2 {
		i := (n*11 + k*17) % s.texts
		fmt.Fprintf(w, "M 100644 inline %s\n", s.textPath(i))
		data(w, textContent(i, 1_000_000+n))
	}
	fmt.Fprintf(w, "M 100644 inline src/pushed/push%04d.txt\n", n)
	data(w, textContent(2_000_000+n, 0))
	if s.bins > 0 {
		fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n", s.binPath(n%s.bins), s.binSize)
		if err := writeRandom(w, uint64(1_000_000+n), s.binSize); err != nil {
			return err
		}
		w.WriteByte('\n')
	}
	return nil
}
