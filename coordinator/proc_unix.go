//go:build unix

package coordinator

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts a worker in its own process group, so a Ctrl-C at the
// terminal reaches only the coordinator, which then stops workers in order
// and drains their last results instead of losing them.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killProcessGroup kills the worker's group. A pid of 1 or less would turn
// kill(-pid) into a signal to init or to every process: never send it.
func killProcessGroup(cmd *exec.Cmd) {
	if pid := cmd.Process.Pid; pid > 1 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}
