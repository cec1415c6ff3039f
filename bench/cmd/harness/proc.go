package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// sampleEvery is how often the process tree's memory is read.
const sampleEvery = 50 * time.Millisecond

// procPeak is what was seen of one process of a tree.
type procPeak struct {
	Name string
	HWM  int64 // KiB; the kernel's own peak RSS (VmHWM), last value read
}

// memSample is one reading of a whole tree.
type memSample struct {
	At    time.Duration
	Total int64 // KiB, VmRSS summed over the tree
	Root  int64 // KiB, VmRSS of the root process alone
}

// treeStats is the memory of a process tree over its life: the peak of the
// summed VmRSS over samples taken every sampleEvery, and each process's own
// VmHWM. The sampled peak can miss a spike shorter than the interval; the
// sum of VmHWM cannot miss one but adds peaks that may not coincide, so it
// is an upper bound. Both are reported.
type treeStats struct {
	Root      int   // pid of the command itself
	PeakTotal int64 // KiB
	Procs     map[int]*procPeak
	Samples   []memSample
}

func (s *treeStats) sumHWM() int64 {
	var n int64
	for _, p := range s.Procs {
		n += p.HWM
	}
	return n
}

// rootHWM is the command's own peak RSS (for scrape: the coordinator).
func (s *treeStats) rootHWM() int64 {
	if p := s.Procs[s.Root]; p != nil {
		return p.HWM
	}
	return 0
}

// sample reads the tree under root until stop closes.
func sample(root int, stop <-chan struct{}, keepSeries bool) *treeStats {
	st := &treeStats{Root: root, Procs: map[int]*procPeak{}}
	start := time.Now()
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		var total, rootRSS int64
		for _, pid := range tree(root) {
			name, rss, hwm, ok := status(pid)
			if !ok {
				continue
			}
			total += rss
			if pid == root {
				rootRSS = rss
			}
			p := st.Procs[pid]
			if p == nil {
				p = &procPeak{Name: name}
				st.Procs[pid] = p
			}
			p.HWM = max(p.HWM, hwm)
		}
		st.PeakTotal = max(st.PeakTotal, total)
		if keepSeries {
			st.Samples = append(st.Samples, memSample{At: time.Since(start), Total: total, Root: rootRSS})
		}
		select {
		case <-stop:
			return st
		case <-t.C:
		}
	}
}

// tree lists root and all its descendants.
func tree(root int) []int {
	out := []int{root}
	for i := 0; i < len(out) && i < 10000; i++ {
		out = append(out, children(out[i])...)
	}
	return out
}

// children lists pid's children from /proc/PID/task/*/children.
func children(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range tasks {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, w := range strings.Fields(string(data)) {
			if n, err := strconv.Atoi(w); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// status reads a process's name, VmRSS and VmHWM (KiB).
func status(pid int) (name string, rss, hwm int64, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", 0, 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		switch k {
		case "Name":
			name = strings.TrimSpace(v)
		case "VmRSS":
			rss = kib(v)
		case "VmHWM":
			hwm = kib(v)
		}
	}
	return name, rss, hwm, rss > 0
}

func kib(v string) int64 {
	f := strings.Fields(v)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(f[0], 10, 64)
	return n
}

// measured is one command's run.
type measured struct {
	Wall time.Duration
	CPU  time.Duration // user+system of the command and the children it reaped
	// Own and Children split CPU: the command's own process (scrape: the
	// coordinator) and the children it reaped (scrape: its local workers),
	// read from the exited process's /proc/PID/stat before it is reaped.
	// Split says they were read; CPU is their sum then.
	Own, Children time.Duration
	Split         bool
	Mem           *treeStats
	ExitErr       error
	Stderr        string
}

// command is what runMeasured runs: argv, and the file its standard output
// goes to ("": discarded).
type command struct {
	Argv   []string
	Stdout string
}

// runMeasured runs c in dir, sampling its process tree, and stops it with
// SIGTERM (then SIGKILL to it and its process group) at limit. stopAt, when
// positive, is a planned SIGTERM: a run measured for a fixed time.
func runMeasured(ctx context.Context, dir string, c command, limit, stopAt time.Duration, keepSeries bool) (*measured, error) {
	argv := c.Argv
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	if c.Stdout != "" {
		f, err := os.Create(c.Stdout)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		cmd.Stdout = f
	}
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 64 << 10}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := make(chan struct{})
	memc := make(chan *treeStats, 1)
	go func() { memc <- sample(cmd.Process.Pid, stop, keepSeries) }()

	waitc := make(chan error, 1)
	var split cpuSplit
	go func() {
		split = exitedCPU(cmd.Process.Pid)
		waitc <- cmd.Wait()
	}()
	var err error
	term := func() { _ = cmd.Process.Signal(syscall.SIGTERM) }
	var planned <-chan time.Time
	if stopAt > 0 {
		planned = time.After(stopAt)
	}
	deadline := time.After(limit)
	killed := false
wait:
	for {
		select {
		case err = <-waitc:
			break wait
		case <-planned:
			planned = nil
			term()
		case <-ctx.Done():
			term()
			deadline = time.After(10 * time.Second)
			ctx = context.Background()
		case <-deadline:
			if killed {
				err = <-waitc
				break wait
			}
			term()
			time.Sleep(10 * time.Second)
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Process.Kill()
			killed = true
			deadline = time.After(5 * time.Second)
		}
	}
	wall := time.Since(start)
	close(stop)
	m := &measured{Wall: wall, Mem: <-memc, ExitErr: err, Stderr: stderr.String()}
	if ps := cmd.ProcessState; ps != nil {
		m.CPU = ps.UserTime() + ps.SystemTime()
		if split.ok {
			m.Own, m.Children, m.Split = split.own, split.children, true
		}
		// The kernel's ru_maxrss is the largest peak of any one process
		// of the tree (KiB on Linux). For a run shorter than one sampling
		// interval it is the only sound figure, so the peak is never
		// reported below it.
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			m.Mem.PeakTotal = max(m.Mem.PeakTotal, ru.Maxrss)
			if p := m.Mem.Procs[m.Mem.Root]; p != nil && len(m.Mem.Procs) == 1 {
				p.HWM = max(p.HWM, ru.Maxrss)
			}
		}
	}
	if killed {
		m.ExitErr = errors.Join(err, fmt.Errorf("killed after %s", limit))
	}
	return m, nil
}

type limitedWriter struct {
	w *bytes.Buffer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if room := l.n - l.w.Len(); room > 0 {
		l.w.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// clockTicks is USER_HZ, the unit of /proc's CPU times (100 on Linux).
const clockTicks = 100

// systemBusy is the CPU time all CPUs have spent busy since boot, in seconds.
func systemBusy() float64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 4 {
		return 0
	}
	// Only process time: interrupt and softirq time (loopback networking
	// is mostly softirq) is charged to no process, so counting it would
	// make the benchmark's own traffic look like someone else's load.
	var busy float64
	for _, v := range f[1:4] {
		n, _ := strconv.ParseFloat(v, 64)
		busy += n
	}
	return busy / clockTicks
}

// procCPU is the user+system CPU time of pid itself, in seconds.
func procCPU(pid int) float64 {
	f, ok := statFields(pid)
	if !ok || len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / clockTicks
}

// cpuSplit is an exited process's CPU time: its own, and its reaped
// children's.
type cpuSplit struct {
	own, children time.Duration
	ok            bool
}

// exitedCPU waits for pid to exit without reaping it (waitid with WNOWAIT),
// and reads its CPU times from /proc/PID/stat while it is a zombie: utime and
// stime are the process's own, all its threads included; cutime and cstime
// those of the children it waited for (for scrape, the local workers the
// coordinator reaps before it exits). Read any earlier, a process still
// working would be measured short; reaped, it has no /proc entry left. The
// wait4 that then reaps it reports their sum, which the caller can check.
func exitedCPU(pid int) cpuSplit {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EINTR) {
			return cpuSplit{}
		}
	}
	f, ok := statFields(pid)
	if !ok || len(f) < 15 {
		return cpuSplit{}
	}
	var t [4]float64
	for i := range t {
		t[i], _ = strconv.ParseFloat(f[11+i], 64) // utime, stime, cutime, cstime
	}
	tick := func(x float64) time.Duration { return time.Duration(x * float64(time.Second) / clockTicks) }
	return cpuSplit{own: tick(t[0] + t[1]), children: tick(t[2] + t[3]), ok: true}
}

// statFields are the fields of /proc/PID/stat after the command name, from
// field 3 (state) on.
func statFields(pid int) ([]string, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, false
	}
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	return strings.Fields(s), true
}
