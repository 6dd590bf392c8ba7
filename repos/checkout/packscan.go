// This file owns the pack scanner: bounded object sizes for what a fetch writes, wrapped
// around the storage's PackfileWriter.
package checkout

import (
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-git/go-billy/v5"

	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Defaults of ObjectLimits, the values of [server] max_object_size and max_fetch_size
// when they are not set.
const (
	// DefaultMaxObjectSize is GitHub's own limit on one file (it refuses a push of a
	// bigger one). go-git holds an object whole while it indexes a fetched pack, and a
	// delta's base beside its result, so a fetch peaks near three times this.
	DefaultMaxObjectSize = 100 << 20
	// DefaultMaxFetchSize bounds the bytes one fetch may inflate in all: the time and
	// CPU go-git spends hashing and resolving, as memory is bounded per object.
	DefaultMaxFetchSize = 4 << 30
)

// ObjectLimits bound the objects a fetch may bring and an update may read: a pack of a
// few kilobytes can hold a delta that builds a gigabyte, and go-git builds every fetched
// object in memory to hash it.
type ObjectLimits struct {
	MaxObjectSize int64 // server.max_object_size; 0: DefaultMaxObjectSize
	MaxFetchSize  int64 // server.max_fetch_size; 0: DefaultMaxFetchSize
}

func (l ObjectLimits) withDefaults() ObjectLimits {
	if l.MaxObjectSize <= 0 {
		l.MaxObjectSize = DefaultMaxObjectSize
	}
	if l.MaxFetchSize <= 0 {
		l.MaxFetchSize = DefaultMaxFetchSize
	}
	return l
}

// ErrObjectTooLarge is returned (wrapped, with the key to raise) when a fetched pack holds
// an object, or a delta building one, above server.max_object_size, when the pack
// inflates to more than server.max_fetch_size, or when an update meets such an object
// already in the repository.
var ErrObjectTooLarge = errors.New("object too large")

// gatedStorage is the repository storage with its pack writer behind packGate: fetch and
// clone copy origin's pack into PackfileWriter, and go-git's indexer builds each object
// only once the whole pack is in, so a pack refused on its way in is never built.
type gatedStorage struct {
	*filesystem.Storage
	limits ObjectLimits
}

// PackfileWriter is go-git's pack writer behind a packGate.
func (s *gatedStorage) PackfileWriter() (io.WriteCloser, error) {
	before := tempPacks(s.Filesystem())
	w, err := s.Storage.PackfileWriter()
	if err != nil {
		return nil, err
	}
	return newPackGate(w, s.limits, func() {
		// go-git keeps the temporary file of a pack its indexer did not finish; this one is
		// ours (a git command working here at the same moment would make its own).
		for name := range tempPacks(s.Filesystem()) {
			if !before[name] {
				_ = s.Filesystem().Remove(name)
			}
		}
	}), nil
}

// tempPacks lists the temporary pack files in the repository's objects/pack.
func tempPacks(dotgit billy.Filesystem) map[string]bool {
	dir := dotgit.Join("objects", "pack")
	ents, err := dotgit.ReadDir(dir)
	if err != nil {
		return nil
	}
	names := map[string]bool{}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "tmp_pack_") {
			names[dotgit.Join(dir, e.Name())] = true
		}
	}
	return names
}

// fsStorage is the filesystem storage under a repository's storer, gated or not.
func fsStorage(s storer.Storer) (*filesystem.Storage, bool) {
	switch s := s.(type) {
	case *gatedStorage:
		return s.Storage, true
	case *filesystem.Storage:
		return s, true
	}
	return nil, false
}

// packGate scans a pack as it arrives, reading each object's header and each delta's
// declared result size, and passes on to go-git only bytes it has read: the header of an
// object too large never reaches go-git, and neither does the rest of the pack after it.
// It inflates every object once more to find where the next begins (a pack records no
// compressed lengths), with 32 KiB of window, not the object.
type packGate struct {
	inner io.WriteCloser
	pw    *io.PipeWriter
	done  chan struct{}
	err   error // the scan's verdict, set before done is closed
	// refused, when set, runs after a refusal once go-git's writer is closed.
	refused func()
}

func newPackGate(inner io.WriteCloser, l ObjectLimits, refused func()) *packGate {
	pr, pw := io.Pipe()
	g := &packGate{inner: inner, pw: pw, done: make(chan struct{}), refused: refused}
	go func() {
		defer close(g.done)
		f := &forwarder{src: pr, dst: inner, buf: make([]byte, 0, 64<<10)}
		err := scanPack(f, l.withDefaults())
		if err == nil {
			// The checksum is read; whatever follows is go-git's to judge.
			if err = f.flush(); err == nil {
				_, err = io.Copy(inner, pr)
			}
		}
		if err != nil {
			g.err = err
			// go-git's indexer stops at the end of what it was given, and keeps nothing.
			_ = inner.Close()
			if g.refused != nil {
				g.refused()
			}
			// The rest of the pack is read and dropped rather than refused: with a local
			// origin go-git waits for git upload-pack to exit before it returns, and
			// upload-pack waits for its pack to be read. That costs the transfer (bounded by
			// the deploy's timeout), not memory.
			_, _ = io.Copy(io.Discard, pr)
		}
		_ = pr.Close()
	}()
	return g
}

func (g *packGate) Write(p []byte) (int, error) {
	n, err := g.pw.Write(p)
	if err != nil {
		<-g.done
		if g.err != nil {
			return n, g.err
		}
	}
	return n, err
}

// Close waits for the scan of what was written, then closes go-git's writer, which
// indexes the pack and keeps it only if it is whole. A refused pack's error is returned
// here: Write goes on taking (and dropping) its bytes.
func (g *packGate) Close() error {
	_ = g.pw.Close()
	<-g.done
	if g.err != nil {
		return g.err
	}
	return g.inner.Close()
}

// forwarder is the pack's reader for the scan: it hands out bytes one buffer at a time
// and passes a buffer on to go-git only when the scan asks for more, that is once the scan
// has checked everything in it. It is an io.ByteReader so that zlib reads exactly to the
// end of each object and no further.
type forwarder struct {
	src io.Reader
	dst io.Writer
	buf []byte
	pos int
	n   int64 // bytes read from the pack so far, for messages
}

func (f *forwarder) flush() error {
	if len(f.buf) == 0 {
		return nil
	}
	if _, err := f.dst.Write(f.buf); err != nil {
		return err
	}
	f.buf, f.pos = f.buf[:0], 0
	return nil
}

func (f *forwarder) fill() error {
	if err := f.flush(); err != nil {
		return err
	}
	n, err := f.src.Read(f.buf[:cap(f.buf)])
	f.buf = f.buf[:n]
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // the scan stops reading at the checksum by itself
	}
	return err
}

func (f *forwarder) Read(p []byte) (int, error) {
	if f.pos == len(f.buf) {
		if err := f.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, f.buf[f.pos:])
	f.pos += n
	f.n += int64(n)
	return n, nil
}

func (f *forwarder) ReadByte() (byte, error) {
	if f.pos == len(f.buf) {
		if err := f.fill(); err != nil {
			return 0, err
		}
	}
	b := f.buf[f.pos]
	f.pos++
	f.n++
	return b, nil
}

// Pack object types (gitformat-pack(5)).
const (
	packCommit   = 1
	packTree     = 2
	packBlob     = 3
	packTag      = 4
	packOfsDelta = 6
	packRefDelta = 7
)

var packTypeNames = map[byte]string{
	packCommit: "commit", packTree: "tree", packBlob: "blob", packTag: "tag",
	packOfsDelta: "delta", packRefDelta: "delta",
}

// scanPack reads a pack from f and checks each object against l before f passes it on.
func scanPack(f *forwarder, l ObjectLimits) error {
	var hdr [12]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return fmt.Errorf("read the pack header: %w", err)
	}
	if string(hdr[:4]) != "PACK" {
		return errors.New("fetched data is not a pack")
	}
	if v := binary.BigEndian.Uint32(hdr[4:8]); v != 2 && v != 3 {
		return fmt.Errorf("fetched pack has version %d, not 2 or 3", v)
	}
	count := binary.BigEndian.Uint32(hdr[8:12])
	var total int64
	var zr io.ReadCloser
	for i := uint32(0); i < count; i++ {
		at := f.n
		typ, size, err := readObjectHeader(f)
		if err != nil {
			return fmt.Errorf("object %d of the fetched pack: %w", i+1, err)
		}
		name, ok := packTypeNames[typ]
		if !ok {
			return fmt.Errorf("object %d of the fetched pack (offset %d) has unknown type %d", i+1, at, typ)
		}
		switch typ {
		case packOfsDelta:
			if err := skipOffset(f); err != nil {
				return fmt.Errorf("object %d of the fetched pack: %w", i+1, err)
			}
		case packRefDelta:
			if _, err := io.ReadFull(f, make([]byte, 20)); err != nil {
				return fmt.Errorf("object %d of the fetched pack: %w", i+1, err)
			}
		}
		if size > l.MaxObjectSize {
			return tooLarge(name, size, l.MaxObjectSize)
		}
		if zr == nil {
			zr, err = zlib.NewReader(f)
		} else {
			err = zr.(zlib.Resetter).Reset(f, nil)
		}
		if err != nil {
			return fmt.Errorf("object %d of the fetched pack (offset %d): %w", i+1, at, err)
		}
		// go-git refuses an object that inflates to more than its header says, so the
		// header is what it will hold, and for a delta, the result the delta declares.
		body := &countingReader{r: zr, left: size}
		built := size
		if typ == packOfsDelta || typ == packRefDelta {
			if _, err := readDeltaSize(body); err != nil { // the base's size
				return fmt.Errorf("object %d of the fetched pack (offset %d): delta header: %w", i+1, at, err)
			}
			if built, err = readDeltaSize(body); err != nil {
				return fmt.Errorf("object %d of the fetched pack (offset %d): delta header: %w", i+1, at, err)
			}
			if built > l.MaxObjectSize {
				return tooLarge("delta building an object", built, l.MaxObjectSize)
			}
		}
		if total += built; total > l.MaxFetchSize {
			return fmt.Errorf("%w: the fetched pack inflates to more than %s, over server.max_fetch_size", ErrObjectTooLarge, formatSize(l.MaxFetchSize))
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			return fmt.Errorf("object %d of the fetched pack (offset %d): %w", i+1, at, err)
		}
		if body.left != 0 {
			return fmt.Errorf("object %d of the fetched pack (offset %d) inflates to less than its header's %d bytes", i+1, at, size)
		}
	}
	if _, err := io.ReadFull(f, make([]byte, 20)); err != nil {
		return fmt.Errorf("read the pack's checksum: %w", err)
	}
	return nil
}

func tooLarge(what string, size, limit int64) error {
	return fmt.Errorf("%w: a %s of %s is in the fetched pack, over server.max_object_size (%s)", ErrObjectTooLarge, what, formatSize(size), formatSize(limit))
}

// readObjectHeader reads a pack object's type and inflated size.
func readObjectHeader(r io.ByteReader) (typ byte, size int64, err error) {
	b, err := r.ReadByte()
	if err != nil {
		return 0, 0, err
	}
	typ = (b >> 4) & 7
	size = int64(b & 15)
	for shift := uint(4); b&0x80 != 0; shift += 7 {
		if shift > 56 {
			return 0, 0, errors.New("object size does not fit in 63 bits")
		}
		if b, err = r.ReadByte(); err != nil {
			return 0, 0, err
		}
		size |= int64(b&0x7f) << shift
	}
	return typ, size, nil
}

// skipOffset reads an offset delta's base offset (a different varint from the size's).
func skipOffset(r io.ByteReader) error {
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return err
		}
		if b&0x80 == 0 {
			return nil
		}
		if i > 9 {
			return errors.New("delta base offset does not fit in 64 bits")
		}
	}
}

// readDeltaSize reads one of the two sizes that begin a delta: its base's, then its result's.
func readDeltaSize(r io.Reader) (int64, error) {
	var size int64
	var b [1]byte
	for shift := uint(0); ; shift += 7 {
		if shift > 56 {
			return 0, errors.New("size does not fit in 63 bits")
		}
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, err
		}
		size |= int64(b[0]&0x7f) << shift
		if b[0]&0x80 == 0 {
			return size, nil
		}
	}
}

// countingReader reads at most left bytes of an object, and fails on more.
type countingReader struct {
	r    io.Reader
	left int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One byte more than the header says is enough to know it lies.
		var b [1]byte
		if n, err := c.r.Read(b[:]); n > 0 {
			return 0, errors.New("object inflates to more than its header says")
		} else {
			return 0, err
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// formatSize writes n in the largest unit it fills (binary units, as the config reads them).
func formatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0fMB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0fKB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
