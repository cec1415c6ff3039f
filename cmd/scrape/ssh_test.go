package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/syncbuf"
	"github.com/scrape-cluster/scrape/internal/testbin"
	"github.com/scrape-cluster/scrape/internal/testcluster"
	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/queue"
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

// secretLike matches an NKey user's seed, as the workers' keys are.
var secretLike = regexp.MustCompile(`SU[A-Z2-7]{56}`)

func TestClusterOverSSHHidesTheSecret(t *testing.T) {
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
	ssh, bootstraps := tapSSH(t, c)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := scrapeCmd(t, ctx, "run", "-f", mf, writeFile(t, "urls.txt", urls.String()), "-o", out, "--ssh", ssh, "-v")
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// The secrets, as they went to the workers' standard input: each
	// worker its own key, bound to an ID of its own, and the pin of the
	// queue's certificate.
	boots := bootstraps(2)
	var secrets []string
	for _, b := range boots {
		if !secretLike.MatchString(b.NKeySeed) || !queue.ValidWorkerID(b.Worker) || len(b.Pin) != 64 || b.User != "" || b.Password != "" {
			t.Fatalf("bootstrap of %s: key %.4q..., worker %q, pin %q, user %q", b.Node, b.NKeySeed, b.Worker, b.Pin, b.User)
		}
		secrets = append(secrets, b.NKeySeed, b.Worker)
	}
	if boots[0].NKeySeed == boots[1].NKeySeed || boots[0].Worker == boots[1].Worker || boots[0].Pin != boots[1].Pin {
		t.Errorf("two workers share a key or an ID, or were given different pins")
	}
	// What ps shows, on every host and here, until the run ends: no command
	// line (ps) and no environment (ps e) holds a worker's key or ID, or
	// anything like a key. The hosts are network namespaces in this PID
	// namespace, so /proc holds their processes too; Host.Cmdlines is their
	// own ps.
	var err error
	samples, workersSeen := 0, map[string]bool{}
	for running := true; running; samples++ {
		select {
		case err = <-done:
			running = false
		case <-time.After(100 * time.Millisecond):
		}
		for _, h := range c.Hosts {
			if len(h.Cmdlines("^"+regexp.QuoteMeta(bin)+" worker$")) == 1 {
				workersSeen[h.Name] = true
			}
		}
		for _, p := range append(allProcs(), hostProcs(c)...) {
			for _, secret := range secrets {
				if i := strings.Index(p, secret); i >= 0 {
					t.Fatalf("ps shows a secret: %q", p[max(0, i-60):i+len(secret)])
				}
			}
			if m := secretLike.FindString(p); m != "" {
				t.Fatalf("ps shows something like the secret: %q in %.80q", m, p)
			}
		}
	}
	if err != nil {
		t.Fatalf("scrape run: %v\n%s", err, stderr.String())
	}
	if len(workersSeen) != 2 {
		t.Errorf("saw a worker on %v in %d looks at ps, want node1 and node2", workersSeen, samples)
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
	t.Logf("%d looks at every process's command line and environment during the run", samples)
}

func TestClusterUnreachableHosts(t *testing.T) {
	c := testcluster.New(t, 3)
	_, base := serveOn(t, c.BridgeAddr, 20)
	// node2 refuses ssh; node3 does not answer at all.
	if err := c.Hosts[1].StopSSH(); err != nil {
		t.Fatal(err)
	}
	if err := c.Hosts[2].LinkDown(); err != nil {
		t.Fatal(err)
	}
	const connectTimeout = 3 * time.Second
	// 20 pages of 300 ms on node1's one slot: the run outlasts the connect
	// timeout, so node3's launch fails while it goes. (A run that ends
	// first is "a short run" below.)
	var urls strings.Builder
	want := map[int]string{}
	for i := range 20 {
		u := fmt.Sprintf("%s/slow/300/%d", base, i)
		urls.WriteString(u + "\n")
		want[i+1] = u
	}
	urlsFile := writeFile(t, "urls.txt", urls.String())
	ssh := strings.Join(c.SSHCommand(), " ")

	t.Run("some hosts down", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out.json")
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := scrapeCmd(t, ctx, "run", "-f", writeFile(t, "mf", "node1\nnode2\nnode3\n"), urlsFile, "-o", out,
			"--ssh", ssh, "--connect-timeout", connectTimeout.String(), "--per-slot", "1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("scrape run: %v\n%s", err, stderr.String())
		}
		for _, w := range []string{"warning: node2: ssh failed: ", "warning: node3: ssh failed: "} {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("no warning %q:\n%s", w, stderr.String())
			}
		}
		for _, r := range byLine(t, readJSON(t, out), want) {
			if r.Node != "node1" || r.Error != nil {
				t.Errorf("%s: node %q, error %+v; want node1's page", r.URL, r.Node, r.Error)
			}
		}
	})
	t.Run("a short run", func(t *testing.T) {
		// The run is over long before node3's connect timeout: its launch
		// is cut short by the end of the run, which must say so. (Pages of
		// 1.5 s: a start cut short within a second goes unmentioned.)
		p1, p2 := base+"/slow/1500/1", base+"/slow/1500/2"
		short := writeFile(t, "short.txt", p1+"\n"+p2+"\n")
		out := filepath.Join(t.TempDir(), "out.json")
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := scrapeCmd(t, ctx, "run", "-f", writeFile(t, "mf", "node1\nnode3\n"), short, "-o", out,
			"--ssh", ssh, "--connect-timeout", "30s")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("scrape run: %v\n%s", err, stderr.String())
		}
		if w := "warning: node node3 did no work: still starting "; !strings.Contains(stderr.String(), w) {
			t.Errorf("no warning %q:\n%s", w, stderr.String())
		}
		if strings.Contains(stderr.String(), "node1 did no work") {
			t.Errorf("node1 worked, yet is reported idle:\n%s", stderr.String())
		}
		for _, r := range byLine(t, readJSON(t, out), map[int]string{1: p1, 2: p2}) {
			if r.Node != "node1" || r.Error != nil {
				t.Errorf("%s: node %q, error %+v; want node1's page", r.URL, r.Node, r.Error)
			}
		}
	})
	t.Run("every host down", func(t *testing.T) {
		if err := c.Hosts[0].StopSSH(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		hosts := []string{"node1", "node2", "node3", c.UnusedAddr()}
		mf := writeFile(t, "mf", strings.Join(hosts, "\n")+"\n")
		start := time.Now()
		cmd := scrapeCmd(t, ctx, "run", "-f", mf, urlsFile, "--ssh", ssh, "--connect-timeout", connectTimeout.String())
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		took := time.Since(start)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitFailed {
			t.Fatalf("run with no reachable host: %v, want exit status %d\n%s", err, exitFailed, stderr.String())
		}
		// The hosts are tried at once: failing takes one connect timeout,
		// and a little to start and stop.
		if took > connectTimeout+3*time.Second {
			t.Errorf("failing took %s with a %s connect timeout", took, connectTimeout)
		}
		for _, h := range hosts {
			if !strings.Contains(stderr.String(), h+": ssh failed: ") {
				t.Errorf("reasons do not name %s:\n%s", h, stderr.String())
			}
		}
		if pids := sshClients(c); len(pids) > 0 {
			t.Errorf("ssh clients left running: %v", pids)
		}
		t.Logf("failed in %s:\n%s", took.Round(time.Millisecond), stderr.String())
	})
}

// allProcs lists the command line and the environment of every process
// in this PID namespace, as ps and ps e show them.
func allProcs() []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		for _, f := range []string{"cmdline", "environ"} {
			raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), f))
			if err == nil && len(raw) > 0 {
				out = append(out, strings.ReplaceAll(string(raw), "\x00", " "))
			}
		}
	}
	return out
}

// hostProcs lists the command lines of every process on the hosts.
func hostProcs(c *testcluster.Cluster) []string {
	var out []string
	for _, h := range c.Hosts {
		out = append(out, h.Cmdlines(".")...)
	}
	return out
}

func TestClusterPushesBinaryToNodes(t *testing.T) {
	c := testcluster.New(t, 2)
	bin := testbin.Path(t)
	_, base := serveOn(t, c.BridgeAddr, 10)

	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	// Each host has a home of its own, as separate machines do, and each
	// must get its own copy.
	caches := make([]string, len(c.Hosts))
	for i, h := range c.Hosts {
		caches[i] = filepath.Join(h.Home, ".cache", "scrape", hex.EncodeToString(sum[:])[:16])
	}

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
	for _, cache := range caches {
		fi, err := os.Stat(filepath.Join(cache, "scrape"))
		if err != nil {
			t.Fatalf("pushed binary not in the cache: %v", err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("pushed binary %s mode %v, want 0700", cache, fi.Mode().Perm())
		}
		if di, err := os.Stat(cache); err != nil || di.Mode().Perm() != 0o700 {
			t.Errorf("cache directory %s mode %v (%v), want 0700", cache, di.Mode().Perm(), err)
		}
	}
	stderr, err = run(t, "--push")
	if err != nil {
		t.Fatalf("second run with --push: %v\n%s", err, stderr)
	}
	if strings.Contains(stderr, "pushed") {
		t.Errorf("second run pushed again:\n%s", stderr)
	}
}
