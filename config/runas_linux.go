package config

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// switchUsersProblem says why this process cannot run commands as another user and hand
// them their checkout, or "" when it can. It must be root: a non-root gateway would need
// capabilities that, given as ambient capabilities (systemd's AmbientCapabilities), the
// commands would inherit, CAP_SETUID among them, which is root in all but name. Switching
// from root to another user clears every capability. Root must also hold, in a bounded
// set such as systemd's CapabilityBoundingSet, what run_as uses.
func switchUsersProblem() string {
	if os.Geteuid() != 0 {
		return fmt.Sprintf("running commands as another user needs the gateway to run as root, and this process runs as uid %d", os.Geteuid())
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "read /proc/self/status: " + err.Error()
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return "read /proc/self/status: CapEff: " + err.Error()
		}
		var missing []string
		for _, c := range runAsCaps {
			if caps&(1<<c.bit) == 0 {
				missing = append(missing, c.name)
			}
		}
		if len(missing) > 0 {
			return "root here lacks the capabilities " + strings.Join(missing, ", ") + " (see CapabilityBoundingSet in docs/operations.md)"
		}
		return ""
	}
	return "read /proc/self/status: no CapEff line"
}

// runAsCaps are what run_as uses: switching the command's user and groups, handing files
// to it, writing in and over what it owns while updating the checkout, and killing its
// process group on a timeout.
var runAsCaps = []struct {
	bit  uint
	name string
}{{0, "CAP_CHOWN"}, {1, "CAP_DAC_OVERRIDE"}, {3, "CAP_FOWNER"}, {5, "CAP_KILL"}, {6, "CAP_SETGID"}, {7, "CAP_SETUID"}}
