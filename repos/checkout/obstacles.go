// This file owns refusing an update that would lose local work.
package checkout

import (
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
)

// checkObstacles finds, before anything is touched, every untracked file or
// directory that writing the change set would destroy. Tree paths from origin are
// checked too: a hostile tree must not write into .git or outside the checkout.
func (m *mover) checkObstacles(changes []change, tracked map[string]*index.Entry) error {
	deleted := map[string]bool{}
	for _, c := range changes {
		if err := validPath(c.path, c.entry != nil && c.entry.Mode == filemode.Symlink); err != nil {
			return err
		}
		if c.entry == nil {
			deleted[c.path] = true
		}
	}
	var untracked []string
	for _, c := range changes {
		if c.entry == nil {
			continue
		}
		// A file or symlink where a directory must go is fine only if it is a
		// tracked file on its way out; symlinks are never followed, and what is
		// below one does not exist.
		parts := strings.Split(c.path, "/")
		for i := 1; i < len(parts); i++ {
			q := strings.Join(parts[:i], "/")
			fi, err := m.wt.Lstat(q)
			if isNotExist(err) {
				break
			}
			if err != nil {
				return fmt.Errorf("check %s: %w", q, err)
			}
			if fi.IsDir() {
				continue
			}
			if !deleted[q] {
				untracked = append(untracked, q)
			}
			break
		}
		fi, err := m.wt.Lstat(c.path)
		if isNotExist(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("check %s: %w", c.path, err)
		}
		if fi.IsDir() {
			if c.entry.Mode == filemode.Submodule {
				continue
			}
			// Only removable if every file under it is tracked and being deleted.
			err := m.wt.WalkFiles(c.path, func(p string) error {
				if !deleted[p] {
					return fmt.Errorf("directory %s holds untracked files (%s), so it cannot be replaced by a file from origin; move them away", c.path, p)
				}
				return nil
			})
			if err != nil {
				return err
			}
			continue
		}
		if tracked[c.path] == nil && !m.reset && !m.journaled(c.path) {
			untracked = append(untracked, c.path)
		}
	}
	if len(untracked) > 0 {
		set := map[string]bool{}
		for _, p := range untracked {
			set[p] = true
		}
		if m.reset {
			// Only reached for files sitting where origin needs a directory.
			return nil
		}
		return fmt.Errorf("untracked files in %s would be overwritten by origin/%s: %s; move them away or set mode = \"reset\"",
			m.root, m.branch, listPaths(set))
	}
	return nil
}
