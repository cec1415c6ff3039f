package testcluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a process found by walking /proc.
type proc struct {
	pid     int
	cmdline string // arguments joined by spaces
}

// nsInode is the inode of a namespace file such as /run/netns/<name> or
// /proc/<pid>/ns/net, which identifies the namespace.
func nsInode(path string) (uint64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("stat %s: no inode", path)
	}
	return st.Ino, nil
}

// netnsProcs lists the processes whose network namespace has inode ino and
// whose command line matches re (nil matches all). Zombies and processes
// that exit during the walk are left out.
func netnsProcs(ino uint64, re *regexp.Regexp) []proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := fmt.Sprintf("net:[%d]", ino)
	var procs []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil || link != want {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		cmdline := strings.Join(strings.Split(string(bytes.TrimRight(raw, "\x00")), "\x00"), " ")
		if re != nil && !re.MatchString(cmdline) {
			continue
		}
		procs = append(procs, proc{pid: pid, cmdline: cmdline})
	}
	return procs
}

// killNetns kills every process in the network namespace with inode ino and
// waits until none is left. It refuses to touch the caller's own namespace,
// and checks each process's namespace again right before killing it, so that
// a mistake in listing can never reach processes outside.
func killNetns(ctx context.Context, ino uint64) error {
	own, err := os.Readlink("/proc/self/ns/net")
	want := fmt.Sprintf("net:[%d]", ino)
	if err != nil || own == want {
		return fmt.Errorf("kill netns %d: refusing, it is ours or unknown (%v)", ino, err)
	}
	ctx, cancel := context.WithTimeout(ctx, KillTimeout)
	defer cancel()
	for {
		procs := netnsProcs(ino, nil)
		if len(procs) == 0 {
			return nil
		}
		for _, p := range procs {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", p.pid))
			if err != nil || link != want || link == own || p.pid <= 1 || p.pid == os.Getpid() {
				continue
			}
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kill netns %d: still running after %v: %v", ino, KillTimeout, procs)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// procStart is the start time of pid in clock ticks since boot (field 22 of
// /proc/<pid>/stat); ok is false if pid is gone or a zombie. Together with the
// PID it identifies a process even if the PID is later reused.
func procStart(pid int) (start uint64, ok bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may contain spaces and parentheses; the
	// fields after it are plain.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(string(raw[i+1:]))
	if len(fields) < 20 || fields[0] == "Z" || fields[0] == "X" {
		return 0, false
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	return start, err == nil
}

// missingCaps lists the capabilities New needs that this process lacks
// (root in an unprivileged container may have neither).
func missingCaps() string {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(raw)) {
		hex, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		eff, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return ""
		}
		var missing []string
		const capNetAdmin, capSysAdmin = 12, 21
		if eff&(1<<capNetAdmin) == 0 {
			missing = append(missing, "CAP_NET_ADMIN")
		}
		if eff&(1<<capSysAdmin) == 0 {
			missing = append(missing, "CAP_SYS_ADMIN")
		}
		return strings.Join(missing, ", ")
	}
	return ""
}
