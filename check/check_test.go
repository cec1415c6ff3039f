package check

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/machinefile"
	"github.com/scrape-cluster/scrape/remote"
)

func TestClockVerdict(t *testing.T) {
	for _, c := range []struct {
		off  time.Duration
		want Status
		says string
	}{
		{0, OK, "0s ahead of"},
		{-30 * time.Millisecond, OK, "30ms behind"},
		{1999 * time.Millisecond, OK, "ahead of"},
		{ClockWarn, Warn, "2s ahead of"},
		{-90 * time.Second, Warn, "1m30s behind"},
		{3 * time.Hour, Warn, "3h0m0s ahead of"},
		{-ClockFail, Fail, "certificate would not be valid yet"},
	} {
		v := clockVerdict(c.off)
		if v.Status != c.want || !strings.Contains(v.Say, c.says) {
			t.Errorf("clock %s: %s %q, want %s saying %q", c.off, v.Status, v.Say, c.want, c.says)
		}
	}
}

func TestFit(t *testing.T) {
	for _, c := range []struct {
		slots   int
		maxBody int64
		memory  int64
		want    Status
	}{
		{4, 10 << 20, 1 << 30, OK},
		{64, 32 << 20, 1 << 30, Warn}, // 2 GiB of bodies on a 1 GiB Pi
		{1, 10 << 20, 0, Skipped},
	} {
		nc := &nodeCheck{cfg: &Config{MaxBody: c.maxBody}, host: machinefile.Host{Name: "pi"}, node: &Node{Slots: c.slots, Memory: c.memory}}
		if v := nc.fit(); v.Status != c.want {
			t.Errorf("%d slots × %d on %d: %s (%s), want %s", c.slots, c.maxBody, c.memory, v.Status, v.Say, c.want)
		}
	}
}

func TestLoginVerdict(t *testing.T) {
	err := &remote.SSHError{Problem: remote.Classify("pi@rpi4: Permission denied (publickey).\n").For("pi@rpi4")}
	v := loginVerdict(err)
	if v.Status != Fail || v.Kind != remote.KeyRefused || !strings.Contains(v.Fix, "ssh-copy-id pi@rpi4") {
		t.Errorf("key refused: %+v", v)
	}
	err = &remote.SSHError{Problem: remote.Classify("Host key for rpi4 has changed and you have requested strict checking.\nHost key verification failed.\n").For("pi@rpi4")}
	if v := loginVerdict(err); !strings.Contains(v.Fix, "ssh-keygen -R rpi4 ") {
		t.Errorf("host key changed: %+v", v)
	}
	if v := loginVerdict(&remote.CommandError{Exit: 1, Stderr: "This account is currently not available."}); v.Status != Fail || !strings.Contains(v.Say, "not available") {
		t.Errorf("a login shell that refuses: %+v", v)
	}
}

// The way back, both ends on this machine: scrape reach's dial, bash's
// /dev/tcp where the binary is not on the node yet, and a connection that
// does not greet as the check does.
func TestWayBack(t *testing.T) {
	b, err := listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	addr := b.Addr().String()

	tok := token()
	var out bytes.Buffer
	if err := Reach(t.Context(), ReachOptions{TCP: addr, Token: tok}, &out); err != nil {
		t.Fatalf("reach: %v", err)
	}
	if from, arrived := b.wait(t.Context(), tok, time.Second); !arrived || !strings.HasPrefix(from, "127.0.0.1:") {
		t.Errorf("token from reach: arrived %v from %q", arrived, from)
	}
	if !strings.HasPrefix(out.String(), "connected to "+addr+": ok 127.0.0.1:") {
		t.Errorf("reach said %q", out.String())
	}

	if _, err := exec.LookPath("bash"); err == nil {
		tok := token()
		cmd := exec.CommandContext(t.Context(), "sh", "-c", bashDial(addr, tok))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("bash dial: %v: %s", err, out)
		}
		if _, arrived := b.wait(t.Context(), tok, time.Second); !arrived {
			t.Errorf("bash's /dev/tcp did not arrive")
		}
	}

	// A stranger's line is not taken for a node's.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	conn.Close()
	if _, arrived := b.wait(t.Context(), "GET", 200*time.Millisecond); arrived {
		t.Error("a stranger's line counted")
	}

	// Nothing listening: reach says why.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	if err := Reach(t.Context(), ReachOptions{TCP: closed, Token: "x"}, &out); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("reach to a closed port: %v", err)
	}
}

func TestPlainHost(t *testing.T) {
	for addr, want := range map[string]bool{
		"10.0.0.1:4222":   true,
		"[fe80::1]:4222":  true,
		"pi4.lan:4222":    true,
		"a b:4222":        false,
		"x$(reboot):4222": false,
		"no port":         false,
	} {
		if got := plainHost(addr); got != want {
			t.Errorf("plainHost(%q) = %v", addr, got)
		}
	}
}

// buildVersion reads the version stamped with -ldflags -X, as
// scripts/build-all stamps it, from a binary it does not run.
func TestBuildVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.test/hello\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644)
	for _, c := range []struct {
		ldflags, want string
	}{
		{"-s -w -X github.com/scrape-cluster/scrape/scrape.Version=1.2.3+abc", "1.2.3+abc"},
		{"", "unstamped"},
	} {
		out := filepath.Join(dir, "hello")
		cmd := exec.CommandContext(t.Context(), "go", "build", "-ldflags", c.ldflags, "-o", out, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOOS=linux", "GOARCH=arm64")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v: %s", err, b)
		}
		got := buildVersion(out)
		if c.want == "unstamped" {
			if got == "1.2.3+abc" || strings.HasPrefix(got, "unreadable") {
				t.Errorf("unstamped binary: version %q", got)
			}
			continue
		}
		if got != c.want {
			t.Errorf("version %q, want %q", got, c.want)
		}
	}
	if v := buildVersion(filepath.Join(dir, "go.mod")); !strings.HasPrefix(v, "unreadable") {
		t.Errorf("a text file has version %q", v)
	}
}

func TestReportTable(t *testing.T) {
	v := skip("not checked")
	rep := &Report{Total: 2, Ready: 1, Nodes: []*Node{
		{Name: "pi1", Ready: true, Platform: remote.Platform{OS: "linux", Arch: "arm", ARM: "7"}, CPUs: 4, Memory: 1 << 30, Slots: 4,
			Offset: 3 * time.Second, Login: ok("sh shell"), Binary: ok("x"), WayBack: ok("x"), Clock: clockVerdict(3 * time.Second),
			URL: &Verdict{Status: OK}, Fit: ok("fits")},
		{Name: "pi2", Login: fail("the fix", "Permission denied (publickey)."), Binary: v, WayBack: v, Clock: v, URL: &v, Fit: v},
	}}
	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	want := `NODE  READY  LOGIN  PLATFORM     CPUS  MEMORY   SCRAPE  WAY BACK  CLOCK     URL
pi1   yes    ok     linux/armv7  4     1.0 GiB  ok      ok        +3.000s!  ok
pi2   NO     FAIL   -            -     -        -       -         -         -

pi1: clock: 3s ahead of this machine
     fix: turn on time sync on the node (timedatectl set-ntp true), or on this machine
pi2: login: Permission denied (publickey).
     fix: the fix
1 of 2 nodes ready
`
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
}

// The render verdict: a node with a browser renders, one without fetches
// plain pages (no news), and one the machinefile says render=yes of without
// a browser is not ready.
func TestRenderVerdict(t *testing.T) {
	tests := []struct {
		render, browser string
		status          Status
		cell            string
	}{
		{"", "/usr/bin/chromium", OK, "yes"},
		{"", "", Skipped, "no"},
		{machinefile.RenderNo, "/usr/bin/chromium", Skipped, "no"},
		{machinefile.RenderYes, "/usr/bin/chromium", OK, "yes"},
		{machinefile.RenderYes, "", Fail, "FAIL"},
	}
	for _, tt := range tests {
		c := &nodeCheck{host: machinefile.Host{Name: "n", Render: tt.render}}
		v := c.render(tt.browser)
		if v.Status != tt.status {
			t.Errorf("render=%q browser %q: %s (%s), want %s", tt.render, tt.browser, v.Status, v.Say, tt.status)
			continue
		}
		n := &Node{Name: "n", Login: ok("sh"), Binary: ok("x"), WayBack: ok("x"), Clock: ok("x"), Fit: ok("x"), Render: v}
		n.decide()
		if n.Ready != (tt.status != Fail) {
			t.Errorf("render=%q browser %q: ready %v", tt.render, tt.browser, n.Ready)
		}
		var out bytes.Buffer
		if err := (&Report{Total: 1, Nodes: []*Node{n}}).WriteTable(&out); err != nil {
			t.Fatal(err)
		}
		head, rest, _ := strings.Cut(out.String(), "\n")
		row, _, _ := strings.Cut(rest, "\n")
		if !strings.HasSuffix(head, "RENDER") || !strings.HasSuffix(strings.TrimSpace(row), tt.cell) {
			t.Errorf("render=%q browser %q: table\n%s", tt.render, tt.browser, out.String())
		}
		if tt.status == Fail && !strings.Contains(out.String(), "n: render: render=yes") {
			t.Errorf("no render line for a failing node:\n%s", out.String())
		}
	}
}
