package testcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/syncbuf"
)

// Host is one cluster node: a network namespace with one address on the
// bridge and an sshd listening on it.
type Host struct {
	Name  string // node1, node2, ...: the Host name in the ssh config
	Addr  string // its address on the bridge
	Netns string // its network namespace, as ip netns knows it
	Veth  string // the root namespace's end of its veth; eth0 is the other
	// Home is the home directory of the tests' logins on this host: its
	// own, empty when the cluster is made.
	Home string
	// Arch is the GOARCH of the host's login shell and of what its ssh
	// sessions run (foreign.go); "" is this machine's own.
	Arch string

	cluster    *Cluster
	netnsIno   uint64
	sshdConfig string
	sshdOut    syncbuf.Buffer // stderr of every sshd this host ran

	mu      sync.Mutex
	sshd    *daemon
	started []*daemon
}

// Command returns a command that runs name inside the host's namespace.
// The caller starts it. It runs in its own process group, all of which a
// cancelled ctx kills. Right after Start, the process may still be ip
// entering the namespace rather than name; Host.Start waits for the exec.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Netns, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = KillTimeout
	return cmd
}

// Start starts name in the background inside the host's namespace, returns
// once the process runs name there, and kills its process group when the
// test ends. Its output goes to a file that is logged if the test fails.
// Start reaps the process itself: callers must not Wait on the returned
// command; use it for cmd.Process.Pid.
func (h *Host) Start(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := h.Command(context.Background(), name, args...)
	out, err := os.CreateTemp(h.cluster.dir, h.Name+"-*.log")
	if err != nil {
		t.Fatalf("testcluster: %s: %v", h.Name, err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Start()
	out.Close() // the child has its own copy
	if err != nil {
		t.Fatalf("testcluster: start %s on %s: %v", name, h.Name, err)
	}
	d := watch(cmd)
	h.mu.Lock()
	h.started = append(h.started, d)
	h.mu.Unlock()
	if err := waitExec(cmd, d); err != nil {
		_ = d.kill()
		t.Fatalf("testcluster: start %s on %s: %v", name, h.Name, err)
	}
	t.Cleanup(func() {
		if err := d.kill(); err != nil {
			t.Errorf("testcluster: %s on %s: %v", name, h.Name, err)
		}
		if t.Failed() {
			data, _ := os.ReadFile(out.Name())
			const tail = 8 << 10
			if len(data) > tail {
				data = data[len(data)-tail:]
			}
			t.Logf("output of %s on %s (pid %d):\n%s", name, h.Name, cmd.Process.Pid, data)
		}
	})
	return cmd
}

// waitExec waits until ip netns exec has entered the namespace and exec'd
// the program, so that Pids finds it under its own command line, or until
// it has exited.
func waitExec(cmd *exec.Cmd, d *daemon) error {
	wrapper := strings.Join(cmd.Args, "\x00") + "\x00"
	deadline := time.Now().Add(KillTimeout)
	for {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid))
		if d.exited() || err == nil && len(raw) > 0 && string(raw) != wrapper {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ip netns exec did not exec within %v", KillTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// killStarted kills what Start started and has not been killed yet.
func (h *Host) killStarted() {
	h.mu.Lock()
	started := h.started
	h.started = nil
	h.mu.Unlock()
	for _, d := range started {
		_ = d.kill()
	}
}

// Pids lists the processes inside the host's namespace whose command line
// (arguments joined by spaces) matches the regular expression pattern.
func (h *Host) Pids(pattern string) []int {
	var pids []int
	for _, p := range netnsProcs(h.netnsIno, regexp.MustCompile(pattern)) {
		pids = append(pids, p.pid)
	}
	return pids
}

// Cmdlines lists the command lines of the processes Pids would list, as ps
// shows them to every user of the host.
func (h *Host) Cmdlines(pattern string) []string {
	var lines []string
	for _, p := range netnsProcs(h.netnsIno, regexp.MustCompile(pattern)) {
		lines = append(lines, p.cmdline)
	}
	return lines
}

// LinkDown cuts the host off the network by setting both ends of its veth
// down, as if the node were unplugged. Its processes keep running.
func (h *Host) LinkDown() error {
	return h.setLinks("down")
}

// LinkUp reconnects a host cut off by LinkDown.
func (h *Host) LinkUp() error {
	return h.setLinks("up")
}

func (h *Host) setLinks(state string) error {
	ctx := context.Background()
	if err := ipCmd(ctx, "link", "set", h.Veth, state); err != nil {
		return fmt.Errorf("link %s %s: %w", h.Name, state, err)
	}
	if err := ipCmd(ctx, "-n", h.Netns, "link", "set", peerName, state); err != nil {
		return fmt.Errorf("link %s %s: %w", h.Name, state, err)
	}
	return nil
}

// daemon is a background process and the means to stop it.
type daemon struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been reaped
}

// watch reaps cmd, which has been started, in the background.
func watch(cmd *exec.Cmd) *daemon {
	d := &daemon{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(d.done)
	}()
	return d
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop sends sig to the process alone, then kills its process group if it
// has not exited within KillTimeout.
func (d *daemon) stop(sig syscall.Signal) error {
	if d.exited() {
		return nil
	}
	_ = d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
		return nil
	case <-time.After(KillTimeout):
	}
	return d.kill()
}

// kill kills the process group and waits for the process to be reaped.
func (d *daemon) kill() error {
	if d.exited() {
		return nil
	}
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-d.done:
		return nil
	case <-time.After(KillTimeout):
		return fmt.Errorf("pid %d still running %v after SIGKILL", d.cmd.Process.Pid, KillTimeout)
	}
}
