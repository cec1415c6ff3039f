package render

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
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

// groupMemory is what process group pgid takes, in bytes: the proportional
// set size (PSS) of each of its processes, where a page shared by n
// processes counts 1/n in each, so that the sum is what the group holds.
// RSS would count Chromium's shared libraries once per process (850 MB for
// a browser whose PSS is 390 MB); it stands in only where a kernel has no
// smaps_rollup. ok is false when no process of the group was read.
func groupMemory(pgid int) (total int64, ok bool) {
	for _, pid := range groupPIDs(pgid) {
		if n, read := processMemory(pid); read {
			total += n
			ok = true
		}
	}
	return total, ok
}

// groupPIDs lists the live processes of group pgid, zombies left out.
func groupPIDs(pgid int) []int {
	if pgid <= 0 {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 && groupOf(pid) == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// groupOf is pid's process group, from /proc/PID/stat, which also says
// whether it is a zombie; -1 if it is gone or one.
func groupOf(pid int) int {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 3 || f[0] == "Z" { // a zombie holds no memory
		return -1
	}
	g, err := strconv.Atoi(f[2])
	if err != nil {
		return -1
	}
	return g
}

// processMemory is pid's PSS, or its RSS where the kernel has no
// smaps_rollup (before 4.14).
func processMemory(pid int) (int64, bool) {
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	if data, err := os.ReadFile(dir + "smaps_rollup"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if rest, found := strings.CutPrefix(line, "Pss:"); found {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				return kb << 10, err == nil
			}
		}
	}
	data, err := os.ReadFile(dir + "statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(data)) // size resident shared ... in pages
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize()), err == nil
}
