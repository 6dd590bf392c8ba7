//go:build !linux

package config

import (
	"fmt"
	"os"
)

// switchUsersProblem says why this process cannot run commands as another user, or "".
func switchUsersProblem() string {
	if os.Geteuid() != 0 {
		return fmt.Sprintf("running commands as another user needs the gateway to run as root, and this process runs as uid %d", os.Geteuid())
	}
	return ""
}
