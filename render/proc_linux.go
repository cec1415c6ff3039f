package render

import (
	"os/exec"
	"syscall"
)

// ownGroup puts the browser in a process group of its own, which killGroup
// ends whole (its zygote, renderers and utility processes), and has the
// kernel kill it if the worker's thread that started it dies: a worker
// killed with -9 leaves no browser behind (its children notice that their
// parent is gone and exit).
func ownGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = new(syscall.SysProcAttr)
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

// killGroup kills every process of the group pgid leads.
func killGroup(pgid int) {
	if pgid > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}
