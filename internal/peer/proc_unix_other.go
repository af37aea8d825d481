//go:build unix && !linux

package peer

import "syscall"

// setParentDeathSignal: only Linux has a parent-death signal; elsewhere a
// crashed test binary can leave its peers running.
func setParentDeathSignal(*syscall.SysProcAttr) {}
