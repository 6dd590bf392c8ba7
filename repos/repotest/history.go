// Package repotest describes the large git history that the deploy benchmarks in repos and
// scripts/deploylatency measure against, so both measure the same repository and the same
// pushes.
package repotest

import (
	"bytes"
	"fmt"
	"strings"
)

// The history's size: about what a service of a few years has.
const (
	Commits = 4000
	Files   = 2000
	Dirs    = 100
)

// FastImport returns a `git fast-import` stream of Commits commits on refs/heads/main over
// Files files in Dirs folders: the first commit adds every file, each later one changes one
// to three of them. fast-import makes the history in about a second, where a loop of
// commits would take minutes.
func FastImport() []byte {
	var stream bytes.Buffer
	data := func(s string) { fmt.Fprintf(&stream, "data %d\n%s\n", len(s), s) }
	path := func(i int) string { return fmt.Sprintf("dir%03d/file%04d.txt", i%Dirs, i) }
	content := func(i, version int) string {
		return fmt.Sprintf("file %d version %d\n%s", i, version, strings.Repeat("some ordinary source text\n", 1+i%40))
	}
	for c := 1; c <= Commits; c++ {
		fmt.Fprintf(&stream, "commit refs/heads/main\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\n", c, 1_600_000_000+c*60)
		data(fmt.Sprintf("commit %d", c))
		if c > 1 {
			fmt.Fprintf(&stream, "from :%d\n", c-1)
		}
		if c == 1 {
			for i := range Files {
				fmt.Fprintf(&stream, "M 100644 inline %s\n", path(i))
				data(content(i, 0))
			}
			continue
		}
		for k := range 1 + c%3 {
			i := (c*7 + k*13) % Files
			fmt.Fprintf(&stream, "M 100644 inline %s\n", path(i))
			data(content(i, c))
		}
	}
	return stream.Bytes()
}

// Push returns the slash-separated paths that push n (counted from 1) writes, and what it
// writes in each: one existing file changed, one new file added, and CHANGELOG changed.
func Push(n int) (paths []string, content []byte) {
	return []string{
		fmt.Sprintf("dir%03d/file%04d.txt", n%Dirs, n%Files),
		fmt.Sprintf("dir%03d/new%04d.txt", (n*3)%Dirs, n),
		"CHANGELOG",
	}, fmt.Appendf(nil, "push %d\n", n)
}
