package main

// Multi-host scenarios of scrape run: namespace hosts reached over real ssh,
// a test site served from inside one of them, and the failures a cluster
// meets (a killed worker, a host cut off, Ctrl-C, a killed coordinator, a
// hostile web, strangers on the queue's port). Each test checks that every
// input line is in the output exactly once, or, where the run is cut short,
// that what is there is valid and has no duplicates.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/scrape-cluster/scrape/internal/testbin"
	"github.com/scrape-cluster/scrape/internal/testcluster"
	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/scrape"
)

// Helper processes. The cluster tests re-exec this test binary inside a
// host's namespace with -test.run naming one of the TestHelper functions and
// the helper's own arguments after "--" (Host.Start takes no environment).
// Run any other way, the helpers skip.
const (
	helperServeSite = "serve-site" // -- serve-site ADDR PAGES
	helperNATSProbe = "nats-probe" // -- nats-probe ADDR
)

// helperArgs returns the helper's arguments if this process was started as
// helper mode, or skips the test.
func helperArgs(t *testing.T, mode string, n int) []string {
	args := flag.Args()
	if len(args) != n+1 || args[0] != mode {
		t.Skipf("helper process for the cluster tests (-- %s ...)", mode)
	}
	return args[1:]
}

// TestHelperServeSite serves testsite on ADDR until it is killed.
func TestHelperServeSite(t *testing.T) {
	args := helperArgs(t, helperServeSite, 2)
	pages, err := strconv.Atoi(args[1])
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", args[0])
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: testsite.New(pages), ReadHeaderTimeout: 5 * time.Second}
	fmt.Println("serving on", l.Addr())
	t.Fatal(srv.Serve(l)) // Serve only returns with an error
}

// TestHelperNATSProbe tries the queue at ADDR the way a stranger would and
// prints one line per attempt; the caller checks for "--- PASS".
func TestHelperNATSProbe(t *testing.T) {
	args := helperArgs(t, helperNATSProbe, 1)
	for _, p := range natsProbes(args[0]) {
		fmt.Printf("probe: %s: %v\n", p.name, p.err)
		if !errors.Is(p.err, nats.ErrAuthorization) {
			t.Errorf("%s: %v, want %v", p.name, p.err, nats.ErrAuthorization)
		}
	}
	if err := checkAuthRequired(args[0]); err != nil {
		t.Error(err)
	} else {
		fmt.Println("probe: INFO says auth_required")
	}
}

type natsProbe struct {
	name string
	err  error
}

// natsProbes connects to the queue at addr without credentials and with
// wrong ones, and returns how each attempt ended.
func natsProbes(addr string) []natsProbe {
	attempts := []struct {
		name string
		opts []nats.Option
	}{
		{"no credentials", nil},
		{"run's user, wrong password", []nats.Option{nats.UserInfo("scrape", "0123456789abcdef0123456789abcdef0123456789abcdef")}},
		{"wrong user and password", []nats.Option{nats.UserInfo("intruder", "letmein")}},
		{"token", []nats.Option{nats.Token("letmein")}},
	}
	var out []natsProbe
	for _, a := range attempts {
		opts := append([]nats.Option{nats.Name("stranger"), nats.Timeout(5 * time.Second), nats.NoReconnect()}, a.opts...)
		nc, err := nats.Connect("nats://"+addr, opts...)
		if err == nil {
			nc.Close()
			err = errors.New("connected")
		}
		out = append(out, natsProbe{a.name, err})
	}
	return out
}

// checkAuthRequired reads the server's greeting on a raw TCP connection.
func checkAuthRequired(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read INFO from %s: %w", addr, err)
	}
	info, ok := strings.CutPrefix(line, "INFO ")
	if !ok {
		return fmt.Errorf("%s greets with %q, want INFO", addr, line)
	}
	var v struct {
		AuthRequired bool `json:"auth_required"`
	}
	if err := json.Unmarshal([]byte(info), &v); err != nil || !v.AuthRequired {
		return fmt.Errorf("%s: INFO %s does not require auth (%v)", addr, strings.TrimSpace(info), err)
	}
	return nil
}

// sitePort is where the site helper listens on its host; a new namespace has
// every port free.
const sitePort = "8080"

// serveSiteIn serves testsite from inside h's namespace, so that workers on
// the other hosts fetch across the bridge, and returns its base URL.
func serveSiteIn(t *testing.T, h *testcluster.Host, pages int) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(h.Addr, sitePort)
	h.Start(t, exe, "-test.run=^TestHelperServeSite$", "-test.timeout=0", "--", helperServeSite, addr, strconv.Itoa(pages))
	waitFor(t, 10*time.Second, "the site on "+h.Name, func() bool {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	return "http://" + addr
}

// slowURLs is n pages of base that each take ms milliseconds to serve.
func slowURLs(base string, ms, n int) []string {
	urls := make([]string, n)
	for i := range urls {
		urls[i] = fmt.Sprintf("%s/slow/%d/%d", base, ms, i)
	}
	return urls
}

// lockedBuffer is a bytes.Buffer a process writes to while a test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// clusterRun is a scrape run on namespace hosts, started in the background.
type clusterRun struct {
	c      *testcluster.Cluster
	bin    string
	cmd    *exec.Cmd
	out    string         // the .json output
	want   map[int]string // input line → URL
	stderr *lockedBuffer
	start  time.Time
	done   chan struct{} // closed once the run has exited; then err is set
	err    error
}

// startClusterRun runs scrape run over the cluster's ssh with the machinefile
// text mf and one URL per input line, writing a JSON array. It kills the run
// if it is still going when the test ends.
func startClusterRun(t *testing.T, c *testcluster.Cluster, mf string, urls []string, extra ...string) *clusterRun {
	t.Helper()
	r := &clusterRun{
		c:      c,
		bin:    testbin.Path(t),
		out:    filepath.Join(t.TempDir(), "out.json"),
		want:   map[int]string{},
		stderr: &lockedBuffer{},
		done:   make(chan struct{}),
	}
	for i, u := range urls {
		r.want[i+1] = u
	}
	args := append([]string{"run", "-f", writeFile(t, "machinefile", mf),
		writeFile(t, "urls.txt", strings.Join(urls, "\n")+"\n"), "-o", r.out,
		"--ssh", strings.Join(c.SSHCommand(), " ")}, extra...)
	r.cmd = exec.Command(r.bin, args...)
	r.cmd.Dir = t.TempDir()
	r.cmd.Stderr = r.stderr
	r.start = time.Now()
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Kill() // the pid is ours and not yet reaped
			<-r.done
		}
		// ssh clients the coordinator leaves behind (when it was killed)
		// are found by the cluster's own ssh config, which no other process
		// names.
		for _, pid := range sshClients(c) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("stderr of scrape run:\n%s", r.stderr.String())
			// Another test process's testcluster.Sweep can remove a live
			// cluster; say so rather than blame the run.
			for _, h := range c.Hosts {
				if _, err := os.Stat("/run/netns/" + h.Netns); err != nil {
					t.Logf("%s: its namespace is gone: %v", h.Name, err)
				}
				if _, err := net.InterfaceByName(h.Veth); err != nil {
					t.Logf("%s: its veth %s is gone: %v", h.Name, h.Veth, err)
				}
			}
		}
	})
	return r
}

// wait waits for the run to end, for at most within, and returns its
// exit code.
func (r *clusterRun) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(within):
		t.Fatalf("scrape run still going after %s\n%s", within, r.stderr.String())
	}
	var ee *exec.ExitError
	switch {
	case r.err == nil:
		return 0
	case errors.As(r.err, &ee):
		return ee.ExitCode()
	default:
		t.Fatalf("scrape run: %v", r.err)
		return -1
	}
}

// waitRecords waits until the output holds at least n records.
func (r *clusterRun) waitRecords(t *testing.T, n int) {
	t.Helper()
	waitFor(t, 60*time.Second, fmt.Sprintf("%d records in the output", n), func() bool {
		select {
		case <-r.done:
			t.Fatalf("scrape run ended before %d records: %v\n%s", n, r.err, r.stderr.String())
		default:
		}
		return outputRecords(r.out) >= n
	})
}

// workerPattern matches the command line of a worker started from bin, and
// nothing else (not the shell or sshd around it).
func workerPattern(bin string) string {
	return "^" + regexp.QuoteMeta(bin) + " worker$"
}

// workers lists the worker processes on every host, by host name.
func (r *clusterRun) workers() map[string][]int {
	all := map[string][]int{}
	for _, h := range r.c.Hosts {
		if pids := h.Pids(workerPattern(r.bin)); len(pids) > 0 {
			all[h.Name] = pids
		}
	}
	return all
}

// sshClients lists the ssh client processes of this machine that use c's
// ssh config.
func sshClients(c *testcluster.Cluster) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if len(args) > 2 && filepath.Base(args[0]) == "ssh" && slices.Contains(args, c.SSHConfig) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// lostLine is the line of stderr that reports a lost node.
func lostLine(stderr string) string {
	for line := range strings.Lines(stderr) {
		if strings.Contains(line, "lost node") {
			return strings.TrimSpace(line)
		}
	}
	return "no lost node reported"
}

// checkComplete checks that the run wrote every input line exactly once, as
// a valid JSON array, and returns the records by line.
func (r *clusterRun) checkComplete(t *testing.T) map[int]record {
	t.Helper()
	recs := readJSON(t, r.out)
	if len(recs) != len(r.want) {
		t.Errorf("%d records for %d input lines", len(recs), len(r.want))
	}
	return byLine(t, recs, r.want)
}

// checkPartial checks an output cut short: a valid JSON array of records of
// input lines, none twice, none an error. It returns how many there are.
func (r *clusterRun) checkPartial(t *testing.T) int {
	t.Helper()
	recs := readJSON(t, r.out)
	seen := map[int]bool{}
	for _, rec := range recs {
		if seen[rec.Line] {
			t.Errorf("line %d has two records", rec.Line)
		}
		seen[rec.Line] = true
		if r.want[rec.Line] != rec.URL {
			t.Errorf("record for line %d is %q, want %q", rec.Line, rec.URL, r.want[rec.Line])
		}
		if rec.Error != nil {
			t.Errorf("line %d: error %+v in a run of good pages", rec.Line, rec.Error)
		}
	}
	return len(recs)
}

func TestClusterThreeHostsShareBySlots(t *testing.T) {
	c := testcluster.New(t, 4) // node4 only serves the site
	base := serveSiteIn(t, c.Hosts[3], 100)
	// 30 ms a page: a slot's throughput is its latency, so each host's
	// share follows its slots as long as it pulls only for free slots.
	urls := slowURLs(base, 30, 2000)
	mf := "# three hosts, seven slots\nnode1:2\nnode2:4 # the big one\nnode3\n"
	r := startClusterRun(t, c, mf, urls)
	if code := r.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("exit %d\n%s", code, r.stderr.String())
	}
	took := time.Since(r.start)
	got := r.checkComplete(t)

	perNode := map[string]int{}
	for line, rec := range got {
		if rec.Error != nil {
			t.Errorf("line %d: %+v", line, rec.Error)
		}
		perNode[rec.Node]++
	}
	// Shares within ±50% of their slots' share: loose enough for a loaded
	// machine, tight enough to fail for an equal split (33% each puts node3
	// at 2.3 times its 14%) or a static split.
	want := map[string]float64{"node1": 2.0 / 7, "node2": 4.0 / 7, "node3": 1.0 / 7}
	total := float64(len(got))
	for node, share := range want {
		s := float64(perNode[node]) / total
		if perNode[node] == 0 {
			t.Errorf("%s fetched nothing", node)
		} else if s < share*0.5 || s > share*1.5 {
			t.Errorf("%s fetched %.1f%% of the pages, want %.1f%% ±50%%", node, 100*s, 100*share)
		}
	}
	if len(perNode) != len(want) {
		t.Errorf("records name nodes %v, want node1..node3", perNode)
	}
	t.Logf("%d pages in %s; per node %v (slots 2:4:1)", len(got), took.Round(time.Millisecond), perNode)
}

func TestClusterWorkerKilled(t *testing.T) {
	c := testcluster.New(t, 3)
	base := serveSiteIn(t, c.Hosts[2], 100)
	r := startClusterRun(t, c, "node1:3\nnode2:3\n", slowURLs(base, 100, 300), "--ack-wait", "2s")
	r.waitRecords(t, 30)

	pids := c.Hosts[0].Pids(workerPattern(r.bin))
	if len(pids) != 1 {
		t.Fatalf("workers on node1: %v, want one", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	before := outputRecords(r.out)
	if code := r.wait(t, 90*time.Second); code != 0 {
		t.Fatalf("exit %d after a worker was killed\n%s", code, r.stderr.String())
	}
	got := r.checkComplete(t)
	perNode := map[string]int{}
	for line, rec := range got {
		if rec.Error != nil {
			t.Errorf("line %d: %+v", line, rec.Error)
		}
		perNode[rec.Node]++
	}
	if perNode["node1"] == 0 || perNode["node2"] == 0 {
		t.Errorf("per node %v with %d records before the kill", perNode, before)
	}
	if !strings.Contains(r.stderr.String(), "lost node node1") {
		t.Errorf("stderr does not report the lost node1:\n%s", r.stderr.String())
	}
	t.Logf("killed node1's worker at %d records; per node %v; %s", before, perNode, lostLine(r.stderr.String()))
}

func TestClusterHostCutOff(t *testing.T) {
	c := testcluster.New(t, 3)
	node1 := c.Hosts[0]
	base := serveSiteIn(t, c.Hosts[2], 100) // not on the host cut off
	// 200 ms pages on 2+2 slots: after the cut, node2 alone needs some 40 s
	// for the rest, longer than ssh takes to give up on node1 (keepalives
	// every 5 s, 3 missed).
	r := startClusterRun(t, c, "node1:2\nnode2:2\n", slowURLs(base, 200, 400), "--ack-wait", "2s")
	r.waitRecords(t, 20)
	if len(node1.Pids(workerPattern(r.bin))) != 1 {
		t.Fatalf("no worker on node1 before the cut")
	}

	if err := node1.LinkDown(); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	linkDown := true
	t.Cleanup(func() {
		if linkDown {
			_ = node1.LinkUp()
		}
	})
	var reported time.Duration
	for reported == 0 {
		select {
		case <-r.done:
			t.Fatalf("run ended (%v) before the cut-off node1 was reported lost\n%s", r.err, r.stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
		if strings.Contains(r.stderr.String(), "lost node node1") {
			reported = time.Since(cut)
		}
		if time.Since(cut) > 45*time.Second {
			t.Fatalf("node1 not reported lost 45s after it was cut off\n%s", r.stderr.String())
		}
	}
	if code := r.wait(t, 90*time.Second); code != 0 {
		t.Fatalf("exit %d after node1 was cut off\n%s", code, r.stderr.String())
	}
	ran := time.Since(cut)
	got := r.checkComplete(t)
	for line, rec := range got {
		if rec.Error != nil {
			t.Errorf("line %d: %+v", line, rec.Error)
		}
	}

	// Back on the network, node1's worker finds no coordinator and must
	// go: at the latest 30 s after it noticed the loss.
	if err := node1.LinkUp(); err != nil {
		t.Fatal(err)
	}
	linkDown = false
	up := time.Now()
	waitFor(t, 40*time.Second, "node1's worker to exit after the run", func() bool {
		return len(node1.Pids(workerPattern(r.bin))) == 0
	})
	t.Logf("node1 reported lost %s after the cut; run ended %s after it; node1's worker gone %s after link up (%s after the cut); %s",
		reported.Round(100*time.Millisecond), ran.Round(100*time.Millisecond),
		time.Since(up).Round(100*time.Millisecond), time.Since(cut).Round(100*time.Millisecond), lostLine(r.stderr.String()))
}

func TestClusterInterrupt(t *testing.T) {
	c := testcluster.New(t, 3)
	base := serveSiteIn(t, c.Hosts[2], 100)
	r := startClusterRun(t, c, "node1:3\nnode2:3\n", slowURLs(base, 200, 400))
	r.waitRecords(t, 20)
	if w := r.workers(); len(w["node1"]) != 1 || len(w["node2"]) != 1 {
		t.Fatalf("workers %v, want one on node1 and one on node2", w)
	}

	if err := r.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	waitFor(t, 5*time.Second, "every worker to stop after Ctrl-C", func() bool { return len(r.workers()) == 0 })
	stopped := time.Since(sent)
	if code := r.wait(t, 10*time.Second); code != exitInterrupted {
		t.Fatalf("exit %d after Ctrl-C, want %d\n%s", code, exitInterrupted, r.stderr.String())
	}
	n := r.checkPartial(t)
	if n == 0 || n >= len(r.want) {
		t.Errorf("%d records after Ctrl-C, want some of %d", n, len(r.want))
	}
	if n < 20 {
		t.Errorf("%d records after Ctrl-C, fewer than the 20 seen before it", n)
	}
	t.Logf("workers gone %s after SIGINT, run exited %s after it, %d of %d records kept",
		stopped.Round(time.Millisecond), time.Since(sent).Round(time.Millisecond), n, len(r.want))
}

func TestClusterCoordinatorKilled(t *testing.T) {
	c := testcluster.New(t, 3)
	base := serveSiteIn(t, c.Hosts[2], 100)
	r := startClusterRun(t, c, "node1:3\nnode2:3\n", slowURLs(base, 200, 400))
	r.waitRecords(t, 10)
	if w := r.workers(); len(w["node1"]) != 1 || len(w["node2"]) != 1 {
		t.Fatalf("workers %v, want one on node1 and one on node2", w)
	}

	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-r.done
	killed := time.Now()
	waitFor(t, 30*time.Second, "every worker to exit by itself", func() bool { return len(r.workers()) == 0 })
	gone := time.Since(killed)
	// The coordinator's ssh clients outlive it in their own process group;
	// they end with their sessions.
	waitFor(t, 10*time.Second, "the coordinator's ssh clients to exit", func() bool { return len(sshClients(c)) == 0 })
	if n := r.checkPartial(t); n < 10 {
		t.Errorf("output after kill -9 holds %d records, want at least the 10 seen", n)
	}
	t.Logf("workers gone %s after the coordinator was killed", gone.Round(time.Millisecond))
}

func TestClusterBadWeb(t *testing.T) {
	c := testcluster.New(t, 3)
	base := serveSiteIn(t, c.Hosts[2], 100)
	const maxBody = 1 << 20
	kinds := []struct {
		path string
		kind string // "" for a page that must be a record without error
	}{
		{"/hang", scrape.KindTimeout},
		{"/stall", scrape.KindTimeout},
		{"/huge", scrape.KindTooLarge},
		{"/loop/a", scrape.KindTooManyRedirects},
		{"/gzipbomb", scrape.KindTooLarge},
		{"/badbytes", ""},
		{"/page/7", ""},
	}
	// Twenty copies of each, interleaved, so that every kind is in flight
	// on both hosts at once.
	var urls []string
	kindOf := map[string]string{}
	for i := range 20 {
		for _, k := range kinds {
			u := fmt.Sprintf("%s%s?copy=%d", base, k.path, i)
			urls = append(urls, u)
			kindOf[u] = k.kind
		}
	}
	r := startClusterRun(t, c, "node1:8\nnode2:8\n", urls, "--timeout", "3s", "--max-body", "1MiB")

	// Sample every worker's resident memory while the run goes.
	const rssBound = 150 << 20
	type peak struct {
		rss     int64
		host    string
		samples int
	}
	sampled := make(chan peak, 1)
	go func() {
		var p peak
		for {
			for _, h := range c.Hosts {
				for _, pid := range h.Pids(workerPattern(r.bin)) {
					if rss, ok := vmRSS(pid); ok {
						p.samples++
						if rss > p.rss {
							p.rss, p.host = rss, h.Name
						}
					}
				}
			}
			select {
			case <-r.done:
				sampled <- p
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	if code := r.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("exit %d\n%s", code, r.stderr.String())
	}
	took := time.Since(r.start)
	p := <-sampled
	t.Logf("%d URLs in %s; peak worker VmRSS %.1f MiB (on %s, %d samples)",
		len(urls), took.Round(time.Millisecond), float64(p.rss)/(1<<20), p.host, p.samples)
	if p.samples < 10 {
		t.Errorf("only %d memory samples of the workers", p.samples)
	}
	if p.rss > rssBound {
		t.Errorf("a worker grew to %d MiB of resident memory, bound %d MiB", p.rss>>20, rssBound>>20)
	}

	raw, err := os.ReadFile(r.out)
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.Valid(raw) || !json.Valid(raw) {
		t.Fatalf("output is not valid UTF-8 JSON")
	}
	got := r.checkComplete(t)
	for line, rec := range got {
		u := r.want[line]
		want := kindOf[u]
		switch {
		case want != "" && (rec.Error == nil || rec.Error.Kind != want):
			t.Errorf("%s: error %+v, want kind %s", u, rec.Error, want)
		case want == "" && rec.Error != nil:
			t.Errorf("%s: error %+v, want none", u, rec.Error)
		}
		if want == scrape.KindTooLarge && rec.Bytes > maxBody+1 {
			t.Errorf("%s: read %d bytes past --max-body %d", u, rec.Bytes, maxBody)
		}
		if want == scrape.KindTimeout && rec.DurationMS > 8000 {
			t.Errorf("%s: took %d ms with --timeout 3s", u, rec.DurationMS)
		}
		if strings.Contains(u, "/badbytes") {
			checkBadBytes(t, u, rec)
		}
	}
}

// checkBadBytes checks the record of /badbytes: a page despite its invalid
// UTF-8, every string of it valid UTF-8.
func checkBadBytes(t *testing.T, u string, rec record) {
	t.Helper()
	if rec.Status != 200 || !strings.HasPrefix(rec.Title, "Bad ") || !strings.HasSuffix(rec.Title, " bytes") {
		t.Errorf("%s: status %d title %q", u, rec.Status, rec.Title)
	}
	if len(rec.Headings) == 0 || len(rec.Links) == 0 {
		t.Errorf("%s: headings %q links %q", u, rec.Headings, rec.Links)
	}
	strs := append([]string{rec.Title, rec.Description, rec.FinalURL, rec.ContentType}, rec.Headings...)
	for _, s := range append(strs, rec.Links...) {
		if !utf8.ValidString(s) {
			t.Errorf("%s: invalid UTF-8 in %q", u, s)
		}
	}
}

// vmRSS reads a process's resident set size in bytes.
func vmRSS(pid int) (int64, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

func TestClusterRefusesClientsWithoutCredentials(t *testing.T) {
	c := testcluster.New(t, 3)
	base := serveSiteIn(t, c.Hosts[2], 100)
	l, err := net.Listen("tcp", net.JoinHostPort(c.BridgeAddr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	queue := l.Addr().String()
	l.Close()
	r := startClusterRun(t, c, "node1:2\nnode2:2\n", slowURLs(base, 100, 300), "--listen", queue)
	r.waitRecords(t, 5)

	// A client that cannot connect can neither pull tasks nor publish
	// results: NATS authenticates in CONNECT, before any SUB or PUB, so the
	// refusal (ErrAuthorization, not a network error: the server was
	// reached) covers both.
	for _, p := range natsProbes(queue) {
		if !errors.Is(p.err, nats.ErrAuthorization) {
			t.Errorf("from the root namespace, %s: %v, want %v", p.name, p.err, nats.ErrAuthorization)
		}
	}
	if err := checkAuthRequired(queue); err != nil {
		t.Error(err)
	}
	// The same from a host of the cluster, where workers dial from.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := c.Hosts[0].Command(ctx, exe, "-test.run=^TestHelperNATSProbe$", "-test.v", "--", helperNATSProbe, queue).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestHelperNATSProbe") ||
		strings.Count(strings.ToLower(string(out)), "authorization violation") < 4 ||
		!strings.Contains(string(out), "INFO says auth_required") {
		t.Errorf("probe from node1: %v\n%s", err, out)
	}

	select {
	case <-r.done:
		t.Fatalf("the run ended before the probes were done; they proved nothing")
	default:
	}
	if code := r.wait(t, time.Minute); code != 0 {
		t.Fatalf("exit %d\n%s", code, r.stderr.String())
	}
	for line, rec := range r.checkComplete(t) {
		if rec.Error != nil {
			t.Errorf("line %d: %+v", line, rec.Error)
		}
	}
}
