package testcluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// helperArg as os.Args[1] makes the test binary a helper process; see
// runHelper. Tests run it inside hosts, where it is at the same path.
const helperArg = "testcluster-helper"

func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == helperArg {
		if err := runHelper(os.Args[2], os.Args[3:]); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runHelper is the helper process:
//
//	listen ADDR GREETING  accept connections on ADDR forever, writing GREETING
//	dial ADDR WAIT        print what ADDR sends; retry refusals for WAIT
//	sleep TOKEN           sleep forever (TOKEN is for Pids to find)
//	crash DIR N           create an N-host cluster in DIR, print its id, sleep
func runHelper(mode string, args []string) error {
	switch {
	case mode == "listen" && len(args) == 2:
		ln, err := net.Listen("tcp", args[0])
		if err != nil {
			return err
		}
		for {
			conn, err := ln.Accept()
			if err != nil {
				return err
			}
			fmt.Fprintln(conn, args[1])
			conn.Close()
		}
	case mode == "dial" && len(args) == 2:
		wait, err := time.ParseDuration(args[1])
		if err != nil {
			return err
		}
		got, err := dialRead(args[0], wait)
		fmt.Print(got)
		return err
	case mode == "sleep" && len(args) == 1:
		select {}
	case mode == "crash" && len(args) == 2:
		var n int
		fmt.Sscan(args[1], &n)
		logf := func(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }
		c, err := create(context.Background(), make([]HostSpec, n), args[0], logf)
		if err != nil {
			return err
		}
		fmt.Println(c.ID)
		select {}
	}
	return fmt.Errorf("bad arguments %q %q", mode, args)
}

// dialRead connects to addr, retrying for wait, and returns what it reads.
func dialRead(addr string, wait time.Duration) (string, error) {
	deadline := time.Now().Add(wait)
	for {
		conn, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err == nil {
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			b, err := io.ReadAll(conn)
			return string(b), err
		}
		if time.Now().After(deadline) {
			return "", err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// self is the test binary, to run as a helper on the hosts.
func self(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// sshRun runs command on host through the cluster's ssh config.
func sshRun(ctx context.Context, c *Cluster, host string, command ...string) (string, error) {
	ssh := c.SSHCommand()
	args := slices.Concat(ssh[1:], []string{host}, command)
	out, err := exec.CommandContext(ctx, ssh[0], args...).CombinedOutput()
	return string(out), err
}

func TestCluster(t *testing.T) {
	c := New(t, 3)
	exe := self(t)
	h1, h2, h3 := c.Hosts[0], c.Hosts[1], c.Hosts[2]

	t.Run("ssh runs on each host", func(t *testing.T) {
		for _, h := range c.Hosts {
			out, err := sshRun(t.Context(), c, h.Name, "hostname -I; echo $SSH_CONNECTION; echo $HOME; ls -A $HOME | wc -l")
			if err != nil {
				t.Fatalf("ssh %s: %v: %s", h.Name, err, out)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 4 {
				t.Fatalf("ssh %s: output %q", h.Name, out)
			}
			// A home of the host's own, empty: no start-up files of this
			// machine's account run in the tests' sessions.
			if lines[2] != h.Home || lines[3] != "0" || !strings.HasPrefix(h.Home, c.dir) {
				t.Errorf("on %s, HOME %s with %s entries; want %s in the cluster's directory, empty", h.Name, lines[2], lines[3], h.Home)
			}
			if addrs := strings.Fields(lines[0]); !slices.Equal(addrs, []string{h.Addr}) {
				t.Errorf("hostname -I on %s = %q, want only %s", h.Name, addrs, h.Addr)
			}
			// SSH_CONNECTION is "client-addr client-port server-addr port".
			if f := strings.Fields(lines[1]); len(f) != 4 || f[0] != c.BridgeAddr || f[2] != h.Addr {
				t.Errorf("SSH_CONNECTION on %s = %q, want from %s to %s", h.Name, lines[1], c.BridgeAddr, h.Addr)
			}
		}
	})

	t.Run("hosts reach each other and root reaches hosts", func(t *testing.T) {
		addr := net.JoinHostPort(h1.Addr, "7000")
		h1.Start(t, exe, helperArg, "listen", addr, "hello from node1")
		if got, err := dialRead(addr, 5*time.Second); err != nil || got != "hello from node1\n" {
			t.Fatalf("root dial %s = %q, %v", addr, got, err)
		}
		out, err := h2.Command(t.Context(), exe, helperArg, "dial", addr, "0s").CombinedOutput()
		if err != nil || string(out) != "hello from node1\n" {
			t.Fatalf("node2 dial %s = %q, %v", addr, out, err)
		}
	})

	t.Run("hosts reach the bridge address", func(t *testing.T) {
		ln, err := net.Listen("tcp", net.JoinHostPort(c.BridgeAddr, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				fmt.Fprintln(conn, "coordinator")
				conn.Close()
			}
		}()
		for _, h := range c.Hosts {
			out, err := h.Command(t.Context(), exe, helperArg, "dial", ln.Addr().String(), "0s").CombinedOutput()
			if err != nil || string(out) != "coordinator\n" {
				t.Errorf("%s dial %s = %q, %v", h.Name, ln.Addr(), out, err)
			}
		}
	})

	t.Run("loopback is per host", func(t *testing.T) {
		const addr = "127.0.0.1:7001"
		h1.Start(t, exe, helperArg, "listen", addr, "node1 loopback")
		out, err := h1.Command(t.Context(), exe, helperArg, "dial", addr, "5s").CombinedOutput()
		if err != nil || string(out) != "node1 loopback\n" {
			t.Fatalf("node1 dial %s = %q, %v", addr, out, err)
		}
		if out, err := h2.Command(t.Context(), exe, helperArg, "dial", addr, "0s").CombinedOutput(); err == nil {
			t.Errorf("node2 reached node1's loopback: %q", out)
		}
	})

	t.Run("link down cuts a host off", func(t *testing.T) {
		addr := net.JoinHostPort(h3.Addr, "7002")
		h3.Start(t, exe, helperArg, "listen", addr, "node3")
		if _, err := dialRead(addr, 5*time.Second); err != nil {
			t.Fatalf("before LinkDown: %v", err)
		}
		if err := h3.LinkDown(); err != nil {
			t.Fatal(err)
		}
		if conn, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil {
			conn.Close()
			t.Fatal("root reached node3 after LinkDown")
		}
		if out, err := h1.Command(t.Context(), exe, helperArg, "dial", addr, "0s").CombinedOutput(); err == nil {
			t.Errorf("node1 reached node3 after LinkDown: %q", out)
		}
		if err := h3.LinkUp(); err != nil {
			t.Fatal(err)
		}
		if got, err := dialRead(addr, 5*time.Second); err != nil || got != "node3\n" {
			t.Fatalf("after LinkUp: %q, %v", got, err)
		}
	})

	t.Run("stopped sshd refuses quickly", func(t *testing.T) {
		if err := h2.StopSSH(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		out, err := sshRun(t.Context(), c, h2.Name, "true")
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Fatalf("ssh to stopped host: %v: %q", err, out)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("ssh to stopped host took %v", d)
		}
		if _, err := sshRun(t.Context(), c, h1.Name, "true"); err != nil {
			t.Errorf("node1 affected by stopping node2's sshd: %v", err)
		}
		if err := h2.StartSSH(); err != nil {
			t.Fatal(err)
		}
		if out, err := sshRun(t.Context(), c, h2.Name, "true"); err != nil {
			t.Errorf("ssh after StartSSH: %v: %s", err, out)
		}
	})

	t.Run("unused address does not answer", func(t *testing.T) {
		addr := net.JoinHostPort(c.UnusedAddr(), "22")
		if conn, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil {
			conn.Close()
			t.Fatalf("%s answered", addr)
		}
	})

	t.Run("pids are per host", func(t *testing.T) {
		token1, token2 := "pidtoken-"+c.ID+"-1", "pidtoken-"+c.ID+"-2"
		cmd1 := h1.Start(t, exe, helperArg, "sleep", token1)
		cmd2 := h2.Start(t, exe, helperArg, "sleep", token2)
		if got := h1.Pids(token1); !slices.Equal(got, []int{cmd1.Process.Pid}) {
			t.Errorf("node1 Pids(%s) = %v, want [%d]", token1, got, cmd1.Process.Pid)
		}
		if got := h2.Pids(token2); !slices.Equal(got, []int{cmd2.Process.Pid}) {
			t.Errorf("node2 Pids(%s) = %v, want [%d]", token2, got, cmd2.Process.Pid)
		}
		if got := h1.Pids(token2); len(got) != 0 {
			t.Errorf("node1 Pids(%s) = %v, want none", token2, got)
		}
		if got := h3.Pids(token1); len(got) != 0 {
			t.Errorf("node3 Pids(%s) = %v, want none", token1, got)
		}
		want := exe + " " + helperArg + " sleep " + token1
		if got := h1.Cmdlines(token1); !slices.Equal(got, []string{want}) {
			t.Errorf("node1 Cmdlines(%s) = %q, want [%q]", token1, got, want)
		}
		if got := h1.Pids("sshd"); len(got) == 0 {
			t.Error("node1 Pids(sshd) found no sshd")
		}
	})
}

// leftovers lists the links and namespaces named with id.
func leftovers(id string) []string {
	var names []string
	for _, n := range append(ourLinks(), ourNetns()...) {
		if idOf(n) == id {
			names = append(names, n)
		}
	}
	return names
}

func TestClusterClose(t *testing.T) {
	c := New(t, 2)
	if got := leftovers(c.ID); len(got) != 5 { // bridge, 2 veths, 2 namespaces
		t.Fatalf("cluster %s has %v, want a bridge, 2 veths, 2 namespaces", c.ID, got)
	}
	var sshds []int
	for _, h := range c.Hosts {
		sshds = append(sshds, h.sshd.cmd.Process.Pid)
	}
	started := c.Hosts[0].Start(t, self(t), helperArg, "sleep", "close-"+c.ID).Process.Pid
	// A process started over ssh that leaves its session: only the walk
	// over the namespace's processes can find it.
	if out, err := sshRun(t.Context(), c, "node2", "setsid sleep 1000 </dev/null >/dev/null 2>&1 &"); err != nil {
		t.Fatalf("ssh: %v: %s", err, out)
	}
	// The remote shell returns before sleep has been exec'd.
	var detached []int
	for range 100 {
		if detached = c.Hosts[1].Pids("^sleep 1000$"); len(detached) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(detached) != 1 {
		t.Fatalf("node2 Pids(sleep 1000) = %v, want one", detached)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := leftovers(c.ID); len(got) != 0 {
		t.Errorf("after Close: %v remain", got)
	}
	if exists(c.marker) {
		t.Errorf("after Close: marker %s remains", c.marker)
	}
	for _, pid := range append(append(sshds, started), detached...) {
		if _, ok := procStart(pid); ok {
			t.Errorf("after Close: pid %d still runs", pid)
		}
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestClusterSweep(t *testing.T) {
	live := New(t, 1)

	// A test process that is killed leaves its cluster behind, sshd and all.
	crash := exec.Command(self(t), helperArg, "crash", t.TempDir(), "2")
	crash.Stderr = os.Stderr
	stdout, err := crash.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := crash.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	crash.Process.Kill()
	crash.Wait()
	id := strings.TrimSpace(line)
	if err != nil || len(id) != 6 {
		t.Fatalf("crash helper printed %q, %v", line, err)
	}
	t.Cleanup(func() { destroy(context.Background(), id, "") }) // should Sweep fail
	var orphans []int
	for _, name := range leftovers(id) {
		if ino, err := nsInode(netnsPath(name)); err == nil {
			for _, p := range netnsProcs(ino, nil) {
				orphans = append(orphans, p.pid)
			}
		}
	}
	// Two sshd listeners, and maybe the tail of the readiness logins.
	if got := leftovers(id); len(got) != 5 || len(orphans) < 2 {
		t.Fatalf("crashed cluster %s left %v and processes %v, want 5 names and 2 sshd", id, got, orphans)
	}

	if err := Sweep(); err != nil {
		t.Fatal(err)
	}
	if got := leftovers(id); len(got) != 0 {
		t.Errorf("after Sweep: %v remain", got)
	}
	for _, pid := range orphans {
		if _, ok := procStart(pid); ok {
			t.Errorf("after Sweep: pid %d still runs", pid)
		}
	}
	if markers, _ := os.ReadDir(MarkerDir); slices.ContainsFunc(markers, func(e os.DirEntry) bool {
		m, err := readMarker(MarkerDir + "/" + e.Name())
		return err == nil && m.ID == id
	}) {
		t.Errorf("after Sweep: marker of %s remains", id)
	}
	if out, err := sshRun(t.Context(), live, "node1", "true"); err != nil {
		t.Errorf("Sweep broke a live cluster: %v: %s", err, out)
	}
}

func TestClusterForeignHosts(t *testing.T) {
	c := NewHosts(t, HostSpec{}, HostSpec{Arch: "arm64"}, HostSpec{Arch: "arm"})
	native, err := exec.Command("uname", "-m").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range c.Hosts {
		want := Machine(h.Arch)
		if h.Arch == "" {
			want = strings.TrimSpace(string(native))
		}
		t.Run(h.Name+"/"+want, func(t *testing.T) {
			// What a node is, to ssh and to scrape's --push: the answer of
			// its login shell, which here is the foreign busybox.
			out, err := sshRun(t.Context(), c, h.Name, `uname -sm; echo "$HOME"; mkdir -p "$HOME/d" && echo ok > "$HOME/d/f" && cat "$HOME/d/f"`)
			if err != nil {
				t.Fatalf("ssh %s: %v: %s", h.Name, err, out)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 3 || lines[0] != "Linux "+want || lines[1] != h.Home || lines[2] != "ok" {
				t.Errorf("on %s: %q, want Linux %s, home %s and a file written there", h.Name, lines, want, h.Home)
			}
		})
	}
}
