//go:build unix

package peer

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the child in a new process group whose id is its
// pid, so signalGroup reaches everything it spawns.
func setProcessGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	setParentDeathSignal(cmd.SysProcAttr)
}

// signalGroup sends SIGTERM, or SIGKILL when kill is set, to the process
// group pgid. A group that is already gone (ESRCH) is fine.
func signalGroup(pgid int, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-pgid, sig)
}
