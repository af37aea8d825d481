//go:build !unix

package peer

import (
	"os"
	"os/exec"
)

// setProcessGroup: no process groups here; Stop ends the direct child only.
func setProcessGroup(*exec.Cmd) {}

// signalGroup kills the process itself (pgid is its pid on unix).
func signalGroup(pid int, kill bool) {
	if p, err := os.FindProcess(pid); err == nil && kill {
		_ = p.Kill()
	}
}
