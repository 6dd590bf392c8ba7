package testkit

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// DeltaBomb is a pack of two objects: a blob of baseSize zero bytes, and a delta against it
// of copies copy instructions, each copying the whole base (up to 16 MiB less one byte, the
// most one instruction can copy). The pack is a few kilobytes; the delta's result is
// copies times the base. It returns the pack and the two blobs' hashes and the result's size.
func DeltaBomb(baseSize, copies int) (pack []byte, base, result string, resultSize int64) {
	zeros := make([]byte, baseSize)
	base = blobHash(zeros, 1)
	chunk := min(baseSize, 0xffffff)
	resultSize = int64(chunk) * int64(copies)
	result = blobHash(zeros[:chunk], copies)

	var delta bytes.Buffer
	writeDeltaSize(&delta, int64(baseSize))
	writeDeltaSize(&delta, resultSize)
	for range copies {
		// A copy from offset 0 (no offset bytes) of chunk bytes (three size bytes).
		delta.Write([]byte{0x80 | 0x10 | 0x20 | 0x40, byte(chunk), byte(chunk >> 8), byte(chunk >> 16)})
	}

	var p bytes.Buffer
	p.WriteString("PACK")
	_ = binary.Write(&p, binary.BigEndian, uint32(2))
	_ = binary.Write(&p, binary.BigEndian, uint32(2))
	writeObjectHeader(&p, 3, int64(baseSize)) // blob
	p.Write(deflate(zeros))
	writeObjectHeader(&p, 7, int64(delta.Len())) // ref delta
	raw, _ := hex.DecodeString(base)
	p.Write(raw)
	p.Write(deflate(delta.Bytes()))
	sum := sha1.Sum(p.Bytes())
	p.Write(sum[:])
	return p.Bytes(), base, result, resultSize
}

// InstallDeltaBomb puts a DeltaBomb pack into the bare repository at bare with git
// index-pack and moves branch to a commit on top of parent ("" for none) whose tree holds
// the base as base.bin and the result as big.bin. git builds the result once here, in its
// own process. It returns the new commit.
func InstallDeltaBomb(bare, branch, parent string, baseSize, copies int) (string, error) {
	pack, base, result, _ := DeltaBomb(baseSize, copies)
	run := func(stdin []byte, args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = bare
		cmd.Env = append(os.Environ(),
			"GIT_AUTHOR_NAME=hookgate test", "GIT_AUTHOR_EMAIL=test@hookgate.invalid",
			"GIT_COMMITTER_NAME=hookgate test", "GIT_COMMITTER_EMAIL=test@hookgate.invalid",
			"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		cmd.Stdin = bytes.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out)), nil
	}
	if _, err := run(pack, "index-pack", "--stdin"); err != nil {
		return "", err
	}
	tree, err := run([]byte(fmt.Sprintf("100644 blob %s\tbase.bin\n100644 blob %s\tbig.bin\n", base, result)), "mktree")
	if err != nil {
		return "", err
	}
	args := []string{"commit-tree", tree, "-m", "a delta that builds a big blob"}
	if parent != "" {
		args = append(args, "-p", parent)
	}
	commit, err := run(nil, args...)
	if err != nil {
		return "", err
	}
	if _, err := run(nil, "update-ref", "refs/heads/"+branch, commit); err != nil {
		return "", err
	}
	return commit, nil
}

func blobHash(chunk []byte, times int) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", int64(len(chunk))*int64(times))
	for range times {
		h.Write(chunk)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func deflate(b []byte) []byte {
	var out bytes.Buffer
	w, _ := zlib.NewWriterLevel(&out, zlib.BestCompression)
	_, _ = w.Write(b)
	_ = w.Close()
	return out.Bytes()
}

// writeObjectHeader writes a pack object's type and size (gitformat-pack(5)).
func writeObjectHeader(w *bytes.Buffer, typ byte, size int64) {
	b := typ<<4 | byte(size&15)
	size >>= 4
	for size != 0 {
		w.WriteByte(b | 0x80)
		b = byte(size & 0x7f)
		size >>= 7
	}
	w.WriteByte(b)
}

// writeDeltaSize writes one of a delta's two leading sizes.
func writeDeltaSize(w *bytes.Buffer, size int64) {
	for size >= 0x80 {
		w.WriteByte(byte(size) | 0x80)
		size >>= 7
	}
	w.WriteByte(byte(size))
}
