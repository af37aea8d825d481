package peer

import "syscall"

// setParentDeathSignal makes the kernel SIGKILL the direct child if the test
// binary dies without running its cleanups (a panic, a -timeout kill), so a
// broker does not outlive the test that started it. It covers the direct
// child only; StartRabbitMQ arranges for that to be the Erlang VM itself.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
