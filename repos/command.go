package repos

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// maxLog is how much of a deploy's output is kept: the end, where the error usually is.
const maxLog = 64 << 10

// waitDelay bounds how long a command's output is read after it exited or was killed, for
// a background process that kept the output pipe open.
const waitDelay = 5 * time.Second

// runCommand runs one deploy command with sh -c in dir, as the account as when it is not
// nil (see Account). The command gets its own process group, and cancelling ctx kills the
// whole group, so a timeout also ends whatever the command started (a build's compiler, a
// test server).
func runCommand(ctx context.Context, command, dir string, env []string, as *Account, out *tailBuffer) error {
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if as != nil {
		cmd.Env = as.commandEnv(env, dir)
		cmd.SysProcAttr.Credential = as.credential()
	}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = waitDelay
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) && ctx.Err() == nil {
		// The command succeeded but left a background process holding its output; that
		// process is the operator's (a daemon it started), so it is left running.
		fmt.Fprintf(out, "[hookgate: stopped reading output %s after the command exited: a background process kept it open]\n", waitDelay)
		return nil
	}
	return err
}

// tailBuffer keeps the last maxLog bytes written to it. Safe for concurrent use: commands
// write while the progress loop reads.
type tailBuffer struct {
	mu      sync.Mutex
	buf     []byte
	dropped int64
	version int64
	// changed is closed by the next write (or the end) to wake the watchers (livelog.go);
	// made by the first watcher that waits.
	changed chan struct{}
	ended   bool
}

func newTailBuffer() *tailBuffer { return &tailBuffer{} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.version++
	t.wakeWatchers()
	if len(p) >= maxLog {
		t.dropped += int64(len(t.buf)) + int64(len(p)-maxLog)
		t.buf = append(t.buf[:0], p[len(p)-maxLog:]...)
		return len(p), nil
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*maxLog {
		cut := len(t.buf) - maxLog
		t.dropped += int64(cut)
		t.buf = append(t.buf[:0], t.buf[cut:]...)
	}
	return len(p), nil
}

// Printf writes a formatted line of hookgate's own into the output.
func (t *tailBuffer) Printf(format string, args ...any) {
	fmt.Fprintf(t, format+"\n", args...)
}

// Snapshot returns the kept output (as SavedOutput reads it) and a version that changes with every write.
func (t *tailBuffer) Snapshot() (string, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	dropped := t.dropped
	if len(b) > maxLog {
		dropped += int64(len(b) - maxLog)
		b = b[len(b)-maxLog:]
	}
	if dropped > 0 {
		return droppedPrefix + strconv.FormatInt(dropped, 10) + droppedSuffix + string(b), t.version
	}
	return string(b), t.version
}
