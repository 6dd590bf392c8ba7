// Package procs reads the host's processes from /proc (Linux) for the gateway's start-up:
// which deploy commands an earlier run left behind, and ending them. Elsewhere it finds
// nothing. It is kept apart from package repos, whose file calls are confined to the
// checkout's writer.
package procs

import (
	"bufio"
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

// End sends SIGTERM to each of ps, then SIGKILL to those still running after grace. Only
// these processes: never their process groups, which a command can share with processes
// that are not its own (setpgid joins any group of the same session). A zombie does not
// count as running: its parent (init, or a gateway that is a container's first process and
// reaps nothing it did not start) may be slow to reap it.
func End(ps []Command, grace time.Duration) {
	for _, p := range ps {
		_ = p.proc.Signal(syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !anyRunning(ps) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range ps {
		if p.running() {
			_ = p.proc.Signal(syscall.SIGKILL)
		}
	}
}

func anyRunning(ps []Command) bool {
	for _, p := range ps {
		if p.running() {
			return true
		}
	}
	return false
}

// Release lets go of the handles Commands took on ps.
func Release(ps []Command) {
	for _, p := range ps {
		if p.proc != nil {
			p.proc.Release()
		}
	}
}

// running says whether the process still runs: it is the one Commands found (its handle
// still signals it; a later process given the same pid is not it) and not a zombie.
func (p Command) running() bool {
	return p.proc.Signal(syscall.Signal(0)) == nil && Running(p.Pid)
}

// Running tells whether process pid exists and is not a zombie.
func Running(pid int) bool {
	f, ok := stat(pid)
	return ok && f[0] != "Z"
}

// stat gives the fields of /proc/PID/stat after the command's name: state, ppid, pgrp, ….
func stat(pid int) ([]string, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, false
	}
	f := strings.Fields(string(b[i+1:]))
	return f, len(f) >= 3
}

// Members lists the processes of process group pgid that are not zombies, by pid.
func Members(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, ok := stat(pid)
		if !ok || f[0] == "Z" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Command is a process that carries a deploy command's environment.
type Command struct {
	Pid    int
	Pgid   int    // its process group
	UID    int    // its real user id: who started it (a setuid program keeps it)
	Deploy int64  // HOOKGATE_DEPLOY
	Repo   string // HOOKGATE_REPO
	Cwd    string // its working directory, symbolic links resolved

	// proc is taken before the files above are read (a pidfd where Linux has them), so a
	// signal sent through it reaches that process or none, never a later one that was
	// given the same pid.
	proc *os.Process
}

// Commands lists the processes that carry HOOKGATE_DEPLOY and HOOKGATE_REPO in
// their environment (deploy commands and what they started). Processes whose environment
// cannot be read (another user's, without root) are skipped. Release the result, or End it.
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
		if env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ")); err != nil {
			continue
		} else if _, ok := parseCommandEnv(env); !ok {
			continue
		}
		// Read again once the handle is held: what is read then is the handle's
		// process, or the handle signals nothing.
		proc, err := os.FindProcess(pid)
		if err != nil {
			continue
		}
		p, ok := readCommand(pid)
		if !ok {
			proc.Release()
			continue
		}
		p.proc = proc
		out = append(out, p)
	}
	return out
}

func readCommand(pid int) (Command, bool) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	env, err := os.ReadFile(filepath.Join(dir, "environ"))
	if err != nil {
		return Command{}, false
	}
	p, ok := parseCommandEnv(env)
	if !ok {
		return Command{}, false
	}
	p.Pid = pid
	if p.Pgid, err = syscall.Getpgid(pid); err != nil {
		return Command{}, false
	}
	if p.Cwd, err = os.Readlink(filepath.Join(dir, "cwd")); err != nil {
		return Command{}, false
	}
	if p.UID, err = realUID(filepath.Join(dir, "status")); err != nil {
		return Command{}, false
	}
	return p, true
}

// realUID reads the real user id from a /proc/PID/status file ("Uid: real effective saved fs").
func realUID(status string) (int, error) {
	f, err := os.Open(status)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
			ids := strings.Fields(v)
			if len(ids) == 0 {
				break
			}
			return strconv.Atoi(ids[0])
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New(status + ": no Uid line")
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
