// Package procs reads the host's processes from /proc (Linux) for the gateway's start-up:
// which deploy commands an earlier run left behind, and ending their process groups.
// Elsewhere it finds nothing. It is kept apart from package repos, whose file calls are
// confined to the checkout's writer.
package procs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Within tells whether dir is path or inside it, symbolic links resolved (a process's
// working directory in /proc is).
func Within(dir, path string) bool {
	if dir == "" || path == "" {
		return false
	}
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		path = resolved
	}
	rel, err := filepath.Rel(path, dir)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// EndGroup sends SIGTERM to the process group, then SIGKILL if a process of it still runs
// after grace. A zombie does not count: its parent (init, or a gateway that is a
// container's first process and reaps nothing it did not start) may be slow to reap it.
func EndGroup(pgid int, grace time.Duration) {
	if err := syscall.Kill(-pgid, syscall.SIGTERM); errors.Is(err, syscall.ESRCH) {
		return
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if LiveMembers(pgid) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// LiveMembers counts the processes of process group pgid that are not zombies.
func LiveMembers(pgid int) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// After the command's name in parentheses: state, ppid, pgrp, ….
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			n++
		}
	}
	return n
}

// Command is a process that carries a deploy command's environment.
type Command struct {
	Pgid   int    // its process group
	Deploy int64  // HOOKGATE_DEPLOY
	Repo   string // HOOKGATE_REPO
	Cwd    string // its working directory, symbolic links resolved
}

// Commands lists the processes that carry HOOKGATE_DEPLOY and HOOKGATE_REPO in
// their environment (deploy commands and what they started). Processes whose environment
// cannot be read (another user's, without root) are skipped.
func Commands() []Command {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []Command
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		p, ok := parseCommandEnv(env)
		if !ok {
			continue
		}
		if p.Pgid, err = syscall.Getpgid(pid); err != nil {
			continue
		}
		if p.Cwd, err = os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err != nil {
			continue
		}
		out = append(out, p)
	}
	return out
}

// parseCommandEnv finds HOOKGATE_DEPLOY=N and HOOKGATE_REPO=NAME in a NUL-separated
// environment.
func parseCommandEnv(env []byte) (Command, bool) {
	var p Command
	for _, kv := range bytes.Split(env, []byte{0}) {
		k, v, _ := strings.Cut(string(kv), "=")
		switch k {
		case "HOOKGATE_DEPLOY":
			p.Deploy, _ = strconv.ParseInt(v, 10, 64)
		case "HOOKGATE_REPO":
			p.Repo = v
		}
	}
	return p, p.Deploy > 0 && p.Repo != ""
}
