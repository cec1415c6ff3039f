package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/check"
	"github.com/scrape-cluster/scrape/internal/testbin"
	"github.com/scrape-cluster/scrape/internal/testcluster"
	"github.com/scrape-cluster/scrape/remote"
)

// A cluster in which each node has one thing wrong, as scrape check must
// tell: a key the node refuses, a host key that changed, no binary, a
// binary of another version, the queue's port blocked by the node's
// firewall, a clock 90 s fast. The binary is at --remote-bin bin/scrape,
// relative to each host's own home.
func TestClusterCheckVerdicts(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil && os.Getenv(testcluster.RequireEnv) != "1" {
		t.Skip("no nft (apt-get install nftables) to block a port inside a host")
	}
	c := testcluster.New(t, 7)
	bin := testbin.Path(t)
	_, base := serveOn(t, c.BridgeAddr, 5)
	const (
		healthy    = "node1"
		keyRefused = "node2"
		keyChanged = "node3"
		missing    = "node4"
		oldVersion = "node5"
		blocked    = "node6"
		fastClock  = "node7"
	)
	for _, h := range c.Hosts {
		if h.Name == missing || h.Name == keyRefused || h.Name == keyChanged {
			continue
		}
		mustMkdir(t, filepath.Join(h.Home, "bin"))
		if h.Name == oldVersion {
			mustWrite(t, filepath.Join(h.Home, "bin", "scrape"), "#!/bin/sh\necho 'scrape version 0.0.1'\n", 0o755)
			continue
		}
		if err := os.Symlink(bin, filepath.Join(h.Home, "bin", "scrape")); err != nil {
			t.Fatal(err)
		}
	}
	// The clock: a date on the PATH that bash's start-up file (read for
	// commands run over ssh) puts first.
	fast := c.Host(fastClock)
	mustMkdir(t, filepath.Join(fast.Home, "fakebin"))
	mustWrite(t, filepath.Join(fast.Home, "fakebin", "date"), "#!/bin/sh\nexec /usr/bin/date -d '+90 seconds' \"$@\"\n", 0o755)
	mustWrite(t, filepath.Join(fast.Home, ".bashrc"), "PATH=$HOME/fakebin:$PATH\n", 0o644)

	// The queue's port, fixed as with --listen, and dropped on its way out
	// of node6 as a firewall would.
	port := freePort(t, c.BridgeAddr)
	nft(t, c.Host(blocked), "add table inet scrapetest",
		"add chain inet scrapetest out { type filter hook output priority 0 ; }",
		fmt.Sprintf("add rule inet scrapetest out ip daddr %s tcp dport %d drop", c.BridgeAddr, port))

	// The client's side of the key problems: node2 is offered a key it
	// does not have, node3 is known under another host key.
	sshConfig := clientConfig(t, c, keyRefused, keyChanged)

	mf := writeFile(t, "mf", "node1:2\nnode2\nnode3\nnode4\nnode5\nnode6\nnode7:4\n")
	args := []string{"check", "-f", mf, "--ssh", "ssh -F " + sshConfig, "--remote-bin", "bin/scrape",
		"--listen", net.JoinHostPort(c.BridgeAddr, fmt.Sprint(port)), "--url", base + "/page/1", "--timeout", "60s"}
	// Generous: a loaded machine takes seconds per ssh login.
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	cmd := scrapeCmd(t, ctx, append(args, "--json")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	took := time.Since(start)
	if ee, isExit := errors.AsType[*exec.ExitError](err); !isExit || ee.ExitCode() != exitFailed {
		t.Fatalf("scrape check with nodes not ready: %v, want exit status %d\n%s\n%s", err, exitFailed, out, stderr.String())
	}
	var rep check.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	t.Logf("checked %d nodes in %s", len(rep.Nodes), took.Round(time.Millisecond))
	nodes := map[string]*check.Node{}
	for _, n := range rep.Nodes {
		nodes[n.Name] = n
	}
	if len(nodes) != 7 || rep.Ready != 2 || rep.Total != 7 {
		t.Fatalf("report of %d nodes, %d of %d ready; want node1 and node7 of 7\n%s", len(nodes), rep.Ready, rep.Total, out)
	}
	expect := func(node, what string, v check.Verdict, status check.Status, says ...string) {
		t.Helper()
		if v.Status != status {
			t.Errorf("%s: %s %s (%s), want %s", node, what, v.Status, v.Say, status)
		}
		for _, s := range says {
			if !strings.Contains(v.Say+" fix: "+v.Fix, s) {
				t.Errorf("%s: %s says %q, fix %q; want %q in it", node, what, v.Say, v.Fix, s)
			}
		}
	}

	n := nodes[healthy]
	if !n.Ready || n.Platform != remote.Own() || n.CPUs < 1 || n.Memory < 1<<20 || n.Slots != 2 || n.Shell != remote.POSIX {
		t.Errorf("%s: %+v, want a ready %s node with its CPUs and memory", healthy, n, remote.Own())
	}
	expect(healthy, "binary", n.Binary, check.OK, "bin/scrape", "version")
	expect(healthy, "way back", n.WayBack, check.OK, c.BridgeAddr)
	expect(healthy, "url", *n.URL, check.OK, "HTTP 200")
	if n.Offset.Abs() > time.Second {
		t.Errorf("%s: clock offset %s on a clock we share", healthy, n.Offset)
	}

	n = nodes[keyRefused]
	expect(keyRefused, "login", n.Login, check.Fail, "Permission denied (publickey)", "authorized_keys", "ssh-copy-id node2")
	if n.Login.Kind != remote.KeyRefused || n.Ready {
		t.Errorf("%s: login %s, ready %v", keyRefused, n.Login.Kind, n.Ready)
	}
	n = nodes[keyChanged]
	expect(keyChanged, "login", n.Login, check.Fail, "has changed", "ssh-keygen -R node3")
	if n.Login.Kind != remote.HostKeyChanged {
		t.Errorf("%s: login %s, want %s", keyChanged, n.Login.Kind, remote.HostKeyChanged)
	}
	n = nodes[missing]
	expect(missing, "binary", n.Binary, check.Fail, "no scrape at bin/scrape", "--push, which would send scrape")
	// Without our binary there yet, the way back is tried with bash.
	expect(missing, "way back", n.WayBack, check.OK, c.BridgeAddr)
	expect(missing, "url", *n.URL, check.Skipped)
	n = nodes[oldVersion]
	expect(oldVersion, "binary", n.Binary, check.Fail, `version "0.0.1"`)
	n = nodes[blocked]
	expect(blocked, "way back", n.WayBack, check.Fail, fmt.Sprintf("%s:%d", c.BridgeAddr, port), fmt.Sprintf("TCP port %d", port))
	expect(blocked, "binary", n.Binary, check.OK)
	n = nodes[fastClock]
	expect(fastClock, "clock", n.Clock, check.Warn, "ahead of this machine")
	if n.Offset < 89*time.Second || n.Offset > 91*time.Second || !n.Ready {
		t.Errorf("%s: clock offset %s (ready %v), want 90s ahead and ready", fastClock, n.Offset, n.Ready)
	}

	// The table says the same, with the fixes, and ends with the count.
	cmd = scrapeCmd(t, ctx, args...)
	table, _ := cmd.Output()
	lines := strings.Split(strings.TrimSpace(string(table)), "\n")
	if last := lines[len(lines)-1]; last != "2 of 7 nodes ready" {
		t.Errorf("last line %q, want \"2 of 7 nodes ready\":\n%s", last, table)
	}
	for _, want := range []string{"node2: login: ", "fix: the node refused every key", "node6: way back: the node cannot connect to", "node5: scrape: "} {
		if !strings.Contains(string(table), want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	t.Logf("scrape check:\n%s", table)

	// scrape run --check stops at the same problems, before any worker.
	cmd = scrapeCmd(t, ctx, "run", "--check", "-f", writeFile(t, "mf2", "node1\nnode4\n"), writeFile(t, "urls", base+"/page/1\n"),
		"--ssh", "ssh -F "+sshConfig, "--remote-bin", "bin/scrape", "-o", filepath.Join(t.TempDir(), "out.jsonl"))
	stderr.Reset()
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "check: 1 of 2 nodes ready") || !strings.Contains(stderr.String(), "node4: scrape: no scrape at bin/scrape") {
		t.Errorf("run --check with node4 lacking the binary: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "[node1]") {
		t.Errorf("run --check started a worker:\n%s", stderr.String())
	}

	// With --push, node4 needs nothing installed: the check says what
	// would be sent, and the run then works.
	cmd = scrapeCmd(t, ctx, "check", "-f", writeFile(t, "mf3", "node4\n"), "--ssh", "ssh -F "+sshConfig, "--push", "--json")
	out, err = cmd.Output()
	rep = check.Report{}
	if err != nil || json.Unmarshal(out, &rep) != nil || rep.Ready != 1 {
		t.Fatalf("check --push of node4: %v\n%s", err, out)
	}
	expect(missing, "binary with --push", rep.Nodes[0].Binary, check.OK, "--push will send scrape")
}

// clientConfig writes a copy of the cluster's ssh config in which refused
// is offered a key it does not know, and changed is known under a host key
// that is not its own.
func clientConfig(t *testing.T, c *testcluster.Cluster, refused, changed string) string {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "stranger")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "stranger", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(c.SSHConfig)
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(conf), "Host ")
	var out strings.Builder
	for _, b := range blocks[1:] {
		name, _, _ := strings.Cut(b, "\n")
		switch strings.TrimSpace(name) {
		case refused:
			b = replaceOption(b, "IdentityFile", key)
		case changed:
			// known_hosts with the other key for this host.
			f := strings.Fields(string(pub))
			kh := filepath.Join(dir, "known_hosts")
			mustWrite(t, kh, fmt.Sprintf("%s,%s %s %s\n", changed, c.Host(changed).Addr, f[0], f[1]), 0o600)
			b = replaceOption(b, "UserKnownHostsFile", kh)
		}
		out.WriteString("Host " + b)
	}
	path := filepath.Join(dir, "ssh_config")
	mustWrite(t, path, out.String(), 0o600)
	return path
}

func replaceOption(block, option, value string) string {
	var b strings.Builder
	for line := range strings.Lines(block) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == option {
			line = "\t" + option + " " + value + "\n"
		}
		b.WriteString(line)
	}
	return b.String()
}

// nft runs nft commands inside host h's namespace.
func nft(t *testing.T, h *testcluster.Host, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		if out, err := h.Command(t.Context(), "nft", c).CombinedOutput(); err != nil {
			t.Fatalf("nft %s on %s: %v: %s", c, h.Name, err, out)
		}
	}
}

// freePort is a TCP port free on addr now.
func freePort(t *testing.T, addr string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// --push sends each node the build for its platform from --push-dir (this
// binary to nodes like this machine), and a node whose build is missing fails alone, naming the file and how to make
// it. node2 says it is an arm64 machine (a uname on its PATH); its "arm64
// build" is this machine's binary with bytes appended, so that it runs
// here and has a hash, and a cache entry, of its own.
func TestClusterPushPerPlatformBuilds(t *testing.T) {
	c := testcluster.New(t, 2)
	bin := testbin.Path(t)
	_, base := serveOn(t, c.BridgeAddr, 20)
	arm := c.Host("node2")
	mustMkdir(t, filepath.Join(arm.Home, "fakebin"))
	mustWrite(t, filepath.Join(arm.Home, "fakebin", "uname"), "#!/bin/sh\necho Linux aarch64\n", 0o755)
	mustWrite(t, filepath.Join(arm.Home, ".bashrc"), "PATH=$HOME/fakebin:$PATH\n", 0o644)

	pushDir := t.TempDir()
	_ = os.Chmod(pushDir, 0o755)
	var urls strings.Builder
	want := map[int]string{}
	for i := range 20 {
		u := fmt.Sprintf("%s/slow/100/%d", base, i)
		urls.WriteString(u + "\n")
		want[i+1] = u
	}
	urlsFile := writeFile(t, "urls.txt", urls.String())
	ssh := strings.Join(c.SSHCommand(), " ")
	run := func(t *testing.T, mf string) (map[string]int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		out := filepath.Join(t.TempDir(), "out.json")
		cmd := scrapeCmd(t, ctx, "run", "-f", mf, urlsFile, "-o", out, "--ssh", ssh, "--push", "--push-dir", pushDir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("scrape run --push: %v\n%s", err, stderr.String())
		}
		perNode := map[string]int{}
		for _, r := range byLine(t, readJSON(t, out), want) {
			perNode[r.Node]++
		}
		return perNode, stderr.String()
	}

	t.Run("build missing", func(t *testing.T) {
		perNode, stderr := run(t, writeFile(t, "mf", "node1\nnode2\n"))
		missing := filepath.Join(pushDir, "scrape-linux-arm64")
		for _, w := range []string{"warning: push to node2: the node is linux/arm64 and there is no " + missing, "scripts/build-all " + pushDir} {
			if !strings.Contains(stderr, w) {
				t.Errorf("no %q in:\n%s", w, stderr)
			}
		}
		if perNode["node1"] != len(want) {
			t.Errorf("work per node %v: node1 should have done it all\n%s", perNode, stderr)
		}
	})
	t.Run("the node's own build", func(t *testing.T) {
		data, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		armBuild := append(data, []byte("\x00another build\x00")...)
		mustWrite(t, filepath.Join(pushDir, "scrape-linux-arm64"), string(armBuild), 0o755)
		// node2 alone, so that it must do the work: a run over both may
		// end before a loaded machine has started node2's worker.
		perNode, stderr := run(t, writeFile(t, "mf", "node2\n"))
		if perNode["node2"] != len(want) {
			t.Errorf("work per node %v: node2 should have done it all\n%s", perNode, stderr)
		}
		for _, n := range []struct {
			host *testcluster.Host
			data []byte
		}{{c.Host("node1"), data}, {arm, armBuild}} {
			sum := sha256.Sum256(n.data)
			cached := filepath.Join(n.host.Home, ".cache", "scrape", hex.EncodeToString(sum[:])[:16], "scrape")
			if got, err := os.ReadFile(cached); err != nil || !bytes.Equal(got, n.data) {
				t.Errorf("%s: %s is not the build for it (%v)", n.host.Name, cached, err)
			}
		}
		if !strings.Contains(stderr, "(linux/arm64, ") || !strings.Contains(stderr, "to node2:") {
			t.Errorf("no word of pushing the arm64 build to node2:\n%s", stderr)
		}
	})
}
