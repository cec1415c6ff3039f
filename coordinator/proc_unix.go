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

func killProcessGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
