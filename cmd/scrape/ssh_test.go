package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testbin"
	"github.com/scrape-cluster/scrape/internal/testcluster"
	"github.com/scrape-cluster/scrape/internal/testsite"
)

// serveOn serves a test site on addr (an address of this machine's, e.g.
// the cluster bridge) for the length of the test.
func serveOn(t *testing.T, addr string, pages int) (*testsite.Site, string) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	site := testsite.New(pages)
	srv := &http.Server{Handler: site, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() {
		site.Close()
		srv.Close()
	})
	return site, "http://" + l.Addr().String()
}

// secretLike matches the run's queue password (hex, 48 characters).
var secretLike = regexp.MustCompile(`[0-9a-f]{48}`)

func TestRunOverSSHOnNamespaceHosts(t *testing.T) {
	c := testcluster.New(t, 2)
	bin := testbin.Path(t)
	const pages = 400
	_, base := serveOn(t, c.BridgeAddr, pages)

	var urls strings.Builder
	want := map[int]string{}
	for i := range pages {
		// A little latency keeps the run going long enough to look at it.
		u := fmt.Sprintf("%s/slow/20/%d", base, i)
		urls.WriteString(u + "\n")
		want[i+1] = u
	}
	out := filepath.Join(t.TempDir(), "out.jsonl")
	mf := writeFile(t, "machinefile", "node1:2 # two slots\nnode2:3\n")

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := scrapeCmd(t, ctx, "run", "-f", mf, writeFile(t, "urls.txt", urls.String()), "-o", out,
		"--ssh", strings.Join(c.SSHCommand(), " "), "-v")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	// While the run goes on, no command line anywhere shows the secret.
	var once sync.Once
	var sawWorkers []string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var running []string
		for _, h := range c.Hosts {
			running = append(running, h.Cmdlines(regexp.QuoteMeta(bin)+" worker")...)
		}
		if len(running) == 2 {
			once.Do(func() { sawWorkers = running })
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(sawWorkers) != 2 {
		t.Errorf("did not see one worker on each host")
	}
	for _, line := range append(allCmdlines(t), hostCmdlines(c)...) {
		if secretLike.MatchString(line) {
			t.Errorf("a command line shows something like the secret: %q", line)
		}
	}

	if err := cmd.Wait(); err != nil {
		t.Fatalf("scrape run: %v\n%s", err, stderr.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	recs := readJSONL(t, data)
	byLine(t, recs, want)
	perNode := map[string]int{}
	for _, r := range recs {
		if r.Error != nil {
			t.Errorf("%s: %+v", r.URL, r.Error)
		}
		perNode[r.Node]++
	}
	if perNode["node1"] == 0 || perNode["node2"] == 0 {
		t.Errorf("work per node %v: both hosts should have fetched", perNode)
	}
	// Workers ran on the hosts, over ssh, and are gone now.
	for _, h := range c.Hosts {
		if pids := h.Pids(regexp.QuoteMeta(bin)); len(pids) != 0 {
			t.Errorf("%s: scrape still running after the run: %v", h.Name, pids)
		}
	}
	if !strings.Contains(stderr.String(), "[node1]") || !strings.Contains(stderr.String(), "[node2]") {
		t.Errorf("worker logs not relayed with their host:\n%s", stderr.String())
	}
}

func TestRunOverSSHReportsUnreachableHosts(t *testing.T) {
	c := testcluster.New(t, 2)
	_, base := serveOn(t, c.BridgeAddr, 20)
	if err := c.Hosts[1].StopSSH(); err != nil {
		t.Fatal(err)
	}
	var urls strings.Builder
	want := map[int]string{}
	for i := range 20 {
		u := fmt.Sprintf("%s/page/%d", base, i)
		urls.WriteString(u + "\n")
		want[i+1] = u
	}
	urlsFile := writeFile(t, "urls.txt", urls.String())
	ssh := strings.Join(c.SSHCommand(), " ")

	t.Run("one host down", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out.json")
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := scrapeCmd(t, ctx, "run", "-f", writeFile(t, "mf", "node1\nnode2\n"), urlsFile, "-o", out, "--ssh", ssh)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("scrape run: %v\n%s", err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "warning: node2: ssh failed") {
			t.Errorf("no warning naming node2 and ssh:\n%s", stderr.String())
		}
		byLine(t, readJSON(t, out), want)
	})
	t.Run("every host down", func(t *testing.T) {
		if err := c.Hosts[0].StopSSH(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		mf := writeFile(t, "mf", "node1\nnode2\n"+c.UnusedAddr()+"\n")
		start := time.Now()
		cmd := scrapeCmd(t, ctx, "run", "-f", mf, urlsFile, "--ssh", ssh, "--connect-timeout", "3s")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if err == nil {
			t.Fatal("run with no reachable host succeeded")
		}
		if took := time.Since(start); took > 15*time.Second {
			t.Errorf("failing took %s with a 3s connect timeout", took)
		}
		for _, h := range []string{"node1", "node2", c.UnusedAddr()} {
			if !strings.Contains(stderr.String(), h+": ssh failed") {
				t.Errorf("reasons do not name %s:\n%s", h, stderr.String())
			}
		}
	})
}

func allCmdlines(t *testing.T) []string {
	t.Helper()
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && len(raw) > 0 {
			out = append(out, strings.ReplaceAll(string(raw), "\x00", " "))
		}
	}
	return out
}

func hostCmdlines(c *testcluster.Cluster) []string {
	var out []string
	for _, h := range c.Hosts {
		out = append(out, h.Cmdlines(".")...)
	}
	return out
}

func TestRunPushesBinaryToNodes(t *testing.T) {
	c := testcluster.New(t, 2)
	bin := testbin.Path(t)
	_, base := serveOn(t, c.BridgeAddr, 10)

	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	home, err := os.UserHomeDir() // the hosts log in as this same user
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(home, ".cache", "scrape", hex.EncodeToString(sum[:])[:16])
	os.RemoveAll(cache)
	t.Cleanup(func() { os.RemoveAll(cache) })

	var urls strings.Builder
	want := map[int]string{}
	for i := range 10 {
		u := fmt.Sprintf("%s/page/%d", base, i)
		urls.WriteString(u + "\n")
		want[i+1] = u
	}
	urlsFile := writeFile(t, "urls.txt", urls.String())
	mf := writeFile(t, "mf", "node1\nnode2\n")
	ssh := strings.Join(c.SSHCommand(), " ")
	run := func(t *testing.T, args ...string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		out := filepath.Join(t.TempDir(), "out.json")
		cmd := scrapeCmd(t, ctx, append([]string{"run", "-f", mf, urlsFile, "-o", out, "--ssh", ssh, "--remote-bin", "/nonexistent/scrape"}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if err == nil {
			byLine(t, readJSON(t, out), want)
		}
		return stderr.String(), err
	}

	stderr, err := run(t)
	if err == nil || !strings.Contains(stderr, "worker binary not found") {
		t.Fatalf("without --push a missing binary should fail the run: %v\n%s", err, stderr)
	}
	stderr, err = run(t, "--push")
	if err != nil {
		t.Fatalf("first run with --push: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "pushed") {
		t.Errorf("first run did not push:\n%s", stderr)
	}
	fi, err := os.Stat(filepath.Join(cache, "scrape"))
	if err != nil {
		t.Fatalf("pushed binary not in the cache: %v", err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("pushed binary mode %v, want 0700", fi.Mode().Perm())
	}
	if di, err := os.Stat(cache); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("cache directory mode %v (%v), want 0700", di.Mode().Perm(), err)
	}
	stderr, err = run(t, "--push")
	if err != nil {
		t.Fatalf("second run with --push: %v\n%s", err, stderr)
	}
	if strings.Contains(stderr, "pushed") {
		t.Errorf("second run pushed again:\n%s", stderr)
	}
}
