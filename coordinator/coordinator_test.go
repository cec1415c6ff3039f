package coordinator

import (
	"bufio"
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/machinefile"
)

func TestRemoteCommandQuotesOnlyWhenNeeded(t *testing.T) {
	tests := map[string]string{
		"/usr/local/bin/scrape":    "/usr/local/bin/scrape worker",
		`C:\tools\scrape.exe`:      `C:\tools\scrape.exe worker`,
		"/opt/my tools/scrape":     "'/opt/my tools/scrape' worker",
		"/opt/it's/scrape":         `'/opt/it'\''s/scrape' worker`,
		"/home/u/.cache/scrape/ab": "/home/u/.cache/scrape/ab worker",
	}
	for in, want := range tests {
		if got := remoteCommand(in); got != want {
			t.Errorf("remoteCommand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWorkerArgvCarriesNoSecret(t *testing.T) {
	cfg := &Config{SSH: []string{"ssh", "-F", "cfg"}, LocalBin: "/bin/scrape", ConnectTimeout: 7 * time.Second}
	local := Node{Host: machinefile.Host{Name: "localhost"}, Local: true}
	if got := local.argv(cfg, "/opt/scrape"); !slices.Equal(got, []string{"/bin/scrape", "worker"}) {
		t.Errorf("local argv %q", got)
	}
	remote := Node{Host: machinefile.Host{Name: "n1", User: "bob", Port: 2222}}
	want := []string{"ssh", "-F", "cfg", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=7",
		"-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3", "-p", "2222", "bob@n1", "/opt/scrape worker"}
	if got := remote.argv(cfg, "/opt/scrape"); !slices.Equal(got, want) {
		t.Errorf("remote argv\n%q\nwant\n%q", got, want)
	}
}

func TestIsLocal(t *testing.T) {
	self, _ := os.Hostname()
	tests := []struct {
		h    machinefile.Host
		want bool
	}{
		{machinefile.Host{Name: "localhost"}, true},
		{machinefile.Host{Name: "LOCALHOST."}, true},
		{machinefile.Host{Name: "127.0.0.1"}, true},
		{machinefile.Host{Name: "127.0.0.2"}, true},
		{machinefile.Host{Name: "::1"}, true},
		{machinefile.Host{Name: self}, true},
		{machinefile.Host{Name: "node1.invalid"}, false},
		{machinefile.Host{Name: "192.0.2.1"}, false},
		{machinefile.Host{Name: "localhost", User: "bob"}, false},
		{machinefile.Host{Name: "localhost", Port: 22}, false},
	}
	for _, tt := range tests {
		if got := isLocal(tt.h); got != tt.want {
			t.Errorf("isLocal(%+v) = %v", tt.h, got)
		}
	}
}

func TestSplitListen(t *testing.T) {
	tests := []struct {
		in   string
		host string
		port int
		err  bool
	}{
		{"", "0.0.0.0", 0, false},
		{":0", "0.0.0.0", 0, false},
		{":4222", "0.0.0.0", 4222, false},
		{"10.0.0.1:4222", "10.0.0.1", 4222, false},
		{"[::]:4222", "::", 4222, false},
		{"10.0.0.1", "10.0.0.1", 0, false},
		{":x", "", 0, true},
		{":70000", "", 0, true},
	}
	for _, tt := range tests {
		h, p, err := splitListen(tt.in)
		if (err != nil) != tt.err || h != tt.host || p != tt.port {
			t.Errorf("splitListen(%q) = %q, %d, %v", tt.in, h, p, err)
		}
	}
}

func TestReadLine(t *testing.T) {
	long := strings.Repeat("x", 100)
	r := bufio.NewReaderSize(strings.NewReader("a\r\nb\n"+long+"\nlast"), 16)
	var got []string
	var cut []bool
	for {
		line, tooLong, err := readLine(r)
		if err != nil {
			break
		}
		got = append(got, strings.TrimRight(string(line), "\r"))
		cut = append(cut, tooLong)
	}
	if len(got) != 4 || got[0] != "a" || got[1] != "b" || got[3] != "last" || !cut[2] || cut[0] || cut[3] {
		t.Errorf("lines %q, cut %v", got, cut)
	}
}

func TestLineRelayPrefixesWholeLines(t *testing.T) {
	var buf bytes.Buffer
	r := &lineRelay{prefix: "[n1] ", dst: &syncWriter{w: &buf}}
	r.Write([]byte("first li"))
	r.Write([]byte("ne\r\nsecond\n\nthird"))
	r.flush()
	want := "[n1] first line\n[n1] second\n[n1] third\n"
	if buf.String() != want {
		t.Errorf("relayed %q, want %q", buf.String(), want)
	}
	if got := r.last(); got != "first line; second; third" {
		t.Errorf("last() = %q", got)
	}
}

// The run's log follows its stderr when the progress bar takes it over, from
// every part of the run, the ones made before the bar included.
func TestLogFollowsStderr(t *testing.T) {
	var before, during bytes.Buffer
	c, err := New(Config{Input: strings.NewReader(""), Stderr: &before, LogLevel: "INFO", LocalBin: "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	fc := c.frontierConfig() // as Run makes it, before the bar
	c.stderr.set(&during)
	fc.Robots.log.Warn("from the robots fetcher")
	c.log.Warn("from the coordinator")
	for _, msg := range []string{"from the robots fetcher", "from the coordinator"} {
		if !strings.Contains(during.String(), msg) {
			t.Errorf("%q did not go through the swapped stderr:\nbefore: %s\nduring: %s", msg, before.String(), during.String())
		}
	}
}
