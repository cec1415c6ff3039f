package main

// Multi-host scenarios of scrape run: namespace hosts reached over real ssh,
// a test site served from inside one of them, and the failures a cluster
// meets (a killed worker, a host cut off, Ctrl-C, a killed coordinator, a
// hostile web, strangers on the queue's port). Each test checks that every
// input line is in the output exactly once, or, where the run is cut short,
// that what is there is valid and has no duplicates.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
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
	"github.com/nats-io/nkeys"

	"github.com/scrape-cluster/scrape/internal/syncbuf"
	"github.com/scrape-cluster/scrape/internal/testbin"
	"github.com/scrape-cluster/scrape/internal/testcluster"
	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// Helper processes. The cluster tests re-exec this test binary inside a
// host's namespace with -test.run naming one of the TestHelper functions and
// the helper's own arguments after "--" (Host.Start takes no environment).
// Run any other way, the helpers skip.
const (
	helperServeSite = "serve-site" // -- serve-site ADDR PAGES LOG
	helperNATSProbe = "nats-probe" // -- nats-probe ADDR TASKS RESULTS
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

// TestHelperServeSite serves testsite on ADDR until it is killed, appending
// a line to the file LOG as each request arrives: the time in Unix
// nanoseconds, the client's address and the request URI.
func TestHelperServeSite(t *testing.T) {
	args := helperArgs(t, helperServeSite, 3)
	pages, err := strconv.Atoi(args[1])
	if err != nil {
		t.Fatal(err)
	}
	log, err := os.OpenFile(args[2], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", args[0])
	if err != nil {
		t.Fatal(err)
	}
	site := testsite.New(pages)
	var mu sync.Mutex
	logged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		from, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		fmt.Fprintf(log, "%d %s %s\n", time.Now().UnixNano(), from, r.RequestURI)
		mu.Unlock()
		site.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: logged, ReadHeaderTimeout: 5 * time.Second}
	fmt.Println("serving on", l.Addr())
	t.Fatal(srv.Serve(l)) // Serve only returns with an error
}

// TestHelperNATSProbe tries the queue at ADDR the way a stranger would,
// aiming at the run's task and result subjects, and prints one line per
// attempt; the caller checks for "--- PASS".
func TestHelperNATSProbe(t *testing.T) {
	args := helperArgs(t, helperNATSProbe, 3)
	for _, p := range strangerProbes(args[0], args[1], args[2]) {
		if p.err != nil {
			t.Errorf("probe: %s: NOT REFUSED: %v", p.name, p.err)
		} else {
			fmt.Printf("probe: %s: refused\n", p.name)
		}
	}
}

// natsProbe is how one attempt on the queue ended: err is nil if the queue
// refused it as it must.
type natsProbe struct {
	name string
	err  error
}

// strangerProbes tries the queue at addr without any key the run knows:
// with the NATS client (no credentials, a user and password, a token, an
// NKey of its own, also under a worker's name), and by hand, subscribing to
// the task subject and publishing a forged result with no CONNECT at all, a
// password, or a public key without a signature. Every attempt must be
// refused as an authorization violation, with no task delivered. A queue
// that demands TLS gets it: a stranger can accept any certificate, so TLS
// is no part of what keeps one out.
func strangerProbes(addr, tasks, results string) []natsProbe {
	var out []natsProbe
	info, err := readInfo(addr)
	if err != nil {
		return []natsProbe{{"read INFO", err}}
	}
	if !info.AuthRequired {
		out = append(out, natsProbe{"INFO says auth_required", fmt.Errorf("%s: INFO does not require auth", addr)})
	} else {
		out = append(out, natsProbe{"INFO says auth_required", nil})
	}
	stranger, _ := nkeys.CreateUser()
	strangerPub, _ := stranger.PublicKey()
	clients := []struct {
		name string
		opts []nats.Option
	}{
		{"client, no credentials", []nats.Option{nats.Name("stranger")}},
		{"client, a user and password", []nats.Option{nats.Name("stranger"), nats.UserInfo("scrape", "0123456789abcdef0123456789abcdef0123456789abcdef")}},
		{"client, a token", []nats.Option{nats.Name("stranger"), nats.Token("letmein")}},
		{"client, an NKey of its own", []nats.Option{nats.Name("stranger"), nats.Nkey(strangerPub, stranger.Sign)}},
		{"client, an NKey of its own, named as a worker", []nats.Option{nats.Name(queue.ClientName(queue.NewWorkerID(), "node1")), nats.Nkey(strangerPub, stranger.Sign)}},
	}
	for _, a := range clients {
		opts := append([]nats.Option{nats.Timeout(5 * time.Second), nats.NoReconnect()}, a.opts...)
		if info.TLSRequired {
			opts = append(opts, nats.Secure(&tls.Config{InsecureSkipVerify: true}))
		}
		nc, err := nats.Connect("nats://"+addr, opts...)
		if err == nil {
			nc.Close()
			err = errors.New("connected")
		} else if errors.Is(err, nats.ErrAuthorization) {
			err = nil
		}
		out = append(out, natsProbe{a.name, err})
	}
	raw := []struct{ name, connect string }{
		{"raw SUB tasks and PUB result, no CONNECT", ""},
		{"raw SUB tasks and PUB result, a password", `{"verbose":false,"pedantic":false,"user":"scrape","pass":"letmein"}`},
		{"raw SUB tasks and PUB result, a public key without a signature", `{"verbose":false,"pedantic":false,"nkey":"` + strangerPub + `"}`},
	}
	for _, a := range raw {
		got, err := rawSession(addr, nil, func(rawInfo) string { return a.connect }, tasks, results)
		if err == nil {
			err = checkRefused(got)
		}
		out = append(out, natsProbe{a.name, err})
	}
	return out
}

// checkRefused checks what a server sent a rawSession it must not let in.
func checkRefused(got string) error {
	switch {
	case strings.Contains(got, "MSG "):
		return fmt.Errorf("a task was delivered: %q", got)
	case strings.Contains(got, "PONG"):
		return fmt.Errorf("the session was accepted: %q", got)
	case !strings.Contains(got, "-ERR 'Authorization Violation'"):
		return fmt.Errorf("no authorization violation: %q", got)
	}
	return nil
}

// tapSSH returns an --ssh command that runs the cluster's ssh with its
// standard input copied to a file, and a function that waits for the
// bootstraps of n workers to pass through it and returns them: the test's
// way to learn the workers' keys without the run telling anyone.
func tapSSH(t *testing.T, c *testcluster.Cluster) (string, func(n int) []queue.Bootstrap) {
	t.Helper()
	dir := t.TempDir()
	tap, log := filepath.Join(dir, "ssh-tap"), filepath.Join(dir, "stdin.log")
	script := "#!/bin/sh\n# Copies ssh's standard input to $1, then runs the rest.\nlog=$1; shift\ntee -a \"$log\" | \"$@\"\n"
	if err := os.WriteFile(tap, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ssh := strings.Join(append([]string{tap, log}, c.SSHCommand()...), " ")
	return ssh, func(n int) []queue.Bootstrap {
		t.Helper()
		var boots []queue.Bootstrap
		waitFor(t, 30*time.Second, fmt.Sprintf("%d bootstraps through ssh", n), func() bool {
			boots = nil
			data, _ := os.ReadFile(log)
			for line := range strings.Lines(string(data)) {
				var b queue.Bootstrap
				if json.Unmarshal([]byte(line), &b) == nil && b.NKeySeed != "" {
					boots = append(boots, b)
				}
			}
			return len(boots) >= n
		})
		return boots
	}
}

// sitePort is where the site helper listens on its host; a new namespace has
// every port free.
const sitePort = "8080"

// site is testsite served from inside a host.
type site struct {
	base string // http://ADDR:PORT
	log  string // its request log; see TestHelperServeSite
}

// siteRequest is one line of a site's request log.
type siteRequest struct {
	at   time.Time
	from string // the client's address: which host asked
	url  string
}

// requests reads the site's request log.
func (s *site) requests(t *testing.T) []siteRequest {
	t.Helper()
	data, err := os.ReadFile(s.log)
	if err != nil {
		t.Fatal(err)
	}
	var reqs []siteRequest
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		ns, err := strconv.ParseInt(at(f, 0), 10, 64)
		if len(f) != 3 || err != nil {
			t.Fatalf("site log %s: bad line %q", s.log, line)
		}
		reqs = append(reqs, siteRequest{time.Unix(0, ns), f[1], s.base + f[2]})
	}
	return reqs
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}

// serveSiteIn serves testsite from inside h's namespace, so that workers on
// the other hosts fetch across the bridge, and returns its base URL.
func serveSiteIn(t *testing.T, h *testcluster.Host, pages int) string {
	t.Helper()
	return serveLoggedSiteIn(t, h, pages).base
}

// serveLoggedSiteIn is serveSiteIn, keeping the site's request log.
func serveLoggedSiteIn(t *testing.T, h *testcluster.Host, pages int) *site {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(h.Addr, sitePort)
	s := &site{base: "http://" + addr, log: filepath.Join(t.TempDir(), "requests.log")}
	h.Start(t, exe, "-test.run=^TestHelperServeSite$", "-test.timeout=0", "--", helperServeSite, addr, strconv.Itoa(pages), s.log)
	waitFor(t, 10*time.Second, "the site on "+h.Name, func() bool {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	return s
}

// slowURLs is n pages of base that each take ms milliseconds to serve.
func slowURLs(base string, ms, n int) []string {
	urls := make([]string, n)
	for i := range urls {
		urls[i] = fmt.Sprintf("%s/slow/%d/%d", base, ms, i)
	}
	return urls
}

// clusterRun is a scrape run on namespace hosts, started in the background.
type clusterRun struct {
	c      *testcluster.Cluster
	bin    string
	cmd    *exec.Cmd
	out    string         // the .json output
	want   map[int]string // input line → URL
	stderr *syncbuf.Buffer
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
		stderr: &syncbuf.Buffer{},
		done:   make(chan struct{}),
	}
	for i, u := range urls {
		r.want[i+1] = u
	}
	// --per-slot 1: these tests count a slot as one page in flight, the
	// pace their kills, cuts and shares are timed by; extra may say else.
	args := append([]string{"run", "-f", writeFile(t, "machinefile", mf),
		writeFile(t, "urls.txt", strings.Join(urls, "\n")+"\n"), "-o", r.out,
		"--ssh", strings.Join(c.SSHCommand(), " "), "--per-slot", "1"}, extra...)
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

	perNode := pagesPerNode(t, got)
	// Shares within ±30% of their slots' share (measured: within 2%):
	// loose enough for a loaded machine, tight enough to fail for an equal
	// split (33% each puts node3 at 2.3 times its 14%, node2 at 0.58 times
	// its 57%) or for hosts that pull more tasks than they have slots.
	want := map[string]float64{"node1": 2.0 / 7, "node2": 4.0 / 7, "node3": 1.0 / 7}
	total := float64(len(got))
	for node, share := range want {
		s := float64(perNode[node]) / total
		if perNode[node] == 0 {
			t.Errorf("%s fetched nothing", node)
		} else if s < share*0.7 || s > share*1.3 {
			t.Errorf("%s fetched %.1f%% of the pages, want %.1f%% ±30%%", node, 100*s, 100*share)
		}
	}
	if len(perNode) != len(want) {
		t.Errorf("records name nodes %v, want node1..node3", perNode)
	}
	t.Logf("%d pages in %s; per node %v (slots 2:4:1)", len(got), took.Round(time.Millisecond), perNode)
}

func TestClusterWorkerKilled(t *testing.T) {
	c := testcluster.New(t, 3)
	node1 := c.Hosts[0]
	site := serveLoggedSiteIn(t, c.Hosts[2], 100)
	r := startClusterRun(t, c, "node1:3\nnode2:3\n", slowURLs(site.base, 100, 300), "--ack-wait", "2s")
	r.waitRecords(t, 30)

	pids := node1.Pids(workerPattern(r.bin))
	if len(pids) != 1 {
		t.Fatalf("workers on node1: %v, want one", pids)
	}
	// Kill while the site serves node1 a page. Its slots finish pages
	// together and then pull, store and ask again; on a loaded runner that
	// gap can be where a kill lands, and then nothing was in its hands. A
	// page asked for less than half a page ago cannot be done yet.
	inFlight := func() bool {
		reqs := site.requests(t)
		for i := len(reqs) - 1; i >= 0; i-- {
			if reqs[i].from == node1.Addr {
				return time.Since(reqs[i].at) < 40*time.Millisecond
			}
		}
		return false
	}
	for deadline := time.Now().Add(30 * time.Second); !inFlight(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("node1 asked the site for no page in 30s")
		}
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	before := outputRecords(r.out)
	if code := r.wait(t, 90*time.Second); code != 0 {
		t.Fatalf("exit %d after a worker was killed\n%s", code, r.stderr.String())
	}
	got := r.checkComplete(t)
	perNode := pagesPerNode(t, got)
	if perNode["node1"] == 0 || perNode["node2"] == 0 {
		t.Errorf("per node %v with %d records before the kill", perNode, before)
	}

	// The pages node1 had asked for when it was killed and has no record
	// of were in its hands: each must have been finished by node2.
	lineOf := map[string]int{}
	for line, u := range r.want {
		lineOf[u] = line
	}
	var redelivered []string
	for _, req := range site.requests(t) {
		line, ok := lineOf[req.url]
		if !ok || req.from != node1.Addr || !req.at.Before(killed) || got[line].Node == "node1" {
			continue
		}
		redelivered = append(redelivered, req.url)
		if rec := got[line]; rec.Node != "node2" || rec.Error != nil {
			t.Errorf("%s, in flight on node1 when it was killed: node %q, error %+v; want done by node2", req.url, rec.Node, rec.Error)
		}
	}
	if len(redelivered) == 0 {
		t.Errorf("no page was in flight on node1 when its worker was killed; the test proved nothing")
	}
	checkLost(t, r.stderr.String(), "node1", "killed")
	t.Logf("killed node1's worker at %d records; %d pages in flight there went to node2; per node %v; %s",
		before, len(redelivered), perNode, lostLine(r.stderr.String()))
}

// checkLost checks that stderr reports node as lost with a reason that
// says why: it contains because.
func checkLost(t *testing.T, stderr, node, because string) {
	t.Helper()
	for line := range strings.Lines(stderr) {
		_, why, ok := strings.Cut(line, "lost node "+node+": ")
		if !ok {
			continue
		}
		if !strings.Contains(why, because) {
			t.Errorf("the report of lost %s does not say %q: %s", node, because, strings.TrimSpace(line))
		}
		return
	}
	t.Errorf("stderr does not report the lost %s:\n%s", node, stderr)
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
	// ssh's own words for a node that stopped answering its keepalives.
	checkLost(t, r.stderr.String(), "node1", "not responding")
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

// stuckURLs is n pages of base at 200 ms each, every tenth of them taking
// 20 s instead: when a run is cut short, some slots are always in the
// middle of a page that will not end soon.
func stuckURLs(base string, n int) []string {
	urls := slowURLs(base, 200, n)
	for i := 0; i < n; i += 10 {
		urls[i] = fmt.Sprintf("%s/slow/20000/%d", base, i)
	}
	return urls
}

// scrapeProcs lists, by host, the command lines of every process on the
// hosts that runs the scrape binary (a worker, or anything around one).
func (r *clusterRun) scrapeProcs() map[string][]string {
	all := map[string][]string{}
	for _, h := range r.c.Hosts {
		if cmds := h.Cmdlines(regexp.QuoteMeta(r.bin)); len(cmds) > 0 {
			all[h.Name] = cmds
		}
	}
	return all
}

func TestClusterInterrupt(t *testing.T) {
	c := testcluster.New(t, 3)
	base := serveSiteIn(t, c.Hosts[2], 100)
	r := startClusterRun(t, c, "node1:3\nnode2:3\n", stuckURLs(base, 400))
	r.waitRecords(t, 20)
	if w := r.workers(); len(w["node1"]) != 1 || len(w["node2"]) != 1 {
		t.Fatalf("workers %v, want one on node1 and one on node2", w)
	}

	before := outputRecords(r.out)
	if err := r.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	const bound = 5 * time.Second
	waitFor(t, bound, "no scrape process on any host after Ctrl-C", func() bool { return len(r.scrapeProcs()) == 0 })
	stopped := time.Since(sent)
	if code := r.wait(t, bound-time.Since(sent)); code != exitInterrupted {
		t.Fatalf("exit %d after Ctrl-C, want %d\n%s", code, exitInterrupted, r.stderr.String())
	}
	exited := time.Since(sent)
	if !strings.Contains(r.stderr.String(), "scrape: interrupted") {
		t.Errorf("stderr does not say the run was interrupted:\n%s", r.stderr.String())
	}
	n := r.checkPartial(t)
	if n >= len(r.want) {
		t.Errorf("%d records after Ctrl-C, want only some of %d", n, len(r.want))
	}
	if n < before {
		t.Errorf("%d records after Ctrl-C, fewer than the %d in the output when it came", n, before)
	}
	t.Logf("no scrape process on the hosts %s after SIGINT, run exited %s after it, %d records then, %d of %d kept",
		stopped.Round(time.Millisecond), exited.Round(time.Millisecond), before, n, len(r.want))
}

func TestClusterCoordinatorKilled(t *testing.T) {
	c := testcluster.New(t, 3)
	base := serveSiteIn(t, c.Hosts[2], 100)
	r := startClusterRun(t, c, "node1:3\nnode2:3\n", stuckURLs(base, 400))
	r.waitRecords(t, 10)
	if w := r.workers(); len(w["node1"]) != 1 || len(w["node2"]) != 1 {
		t.Fatalf("workers %v, want one on node1 and one on node2", w)
	}

	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-r.done
	killed := time.Now()
	// A worker exits when its ssh session ends, or after 30 s without the
	// queue; either way, in 30 s, while pages of 20 s are in flight.
	waitFor(t, 30*time.Second, "no scrape process on any host", func() bool { return len(r.scrapeProcs()) == 0 })
	gone := time.Since(killed)
	// The coordinator's ssh clients outlive it in their own process group;
	// they end with their sessions.
	waitFor(t, 10*time.Second, "the coordinator's ssh clients to exit", func() bool { return len(sshClients(c)) == 0 })
	if n := r.checkPartial(t); n < 10 {
		t.Errorf("output after kill -9 holds %d records, want at least the 10 seen", n)
	}
	t.Logf("no scrape process on the hosts %s after the coordinator was killed", gone.Round(time.Millisecond))
}

func TestClusterBadWeb(t *testing.T) {
	c := testcluster.New(t, 3)
	base := serveSiteIn(t, c.Hosts[2], 100)
	const maxBody = 10 << 20 // the default --max-body
	kinds := []struct {
		path string
		kind string // "" for a page that must be a record without error
	}{
		{"/hang", scrape.KindTimeout},
		{"/stall", scrape.KindTimeout},
		{"/huge", scrape.KindTooLarge}, // an endless body
		{"/loop/a", scrape.KindTooManyRedirects},
		{"/gzipbomb", scrape.KindTooLarge},
		{"/badbytes", ""}, // a page: bad bytes become U+FFFD, never invalid JSON
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
	// Default limits but a short --timeout; --per-host 16 lets 16 pages
	// work on the one bad site at once; no retries, which only make the
	// timeouts take three times as long. The timeout is long enough for a
	// gzip bomb to reach --max-body while endless bodies keep both cores
	// busy on a loaded machine: at 3 s it timed out now and then at a load
	// average of 14 to 17.
	const slots = 8
	r := startClusterRun(t, c, fmt.Sprintf("node1:%d\nnode2:%d\n", slots, slots), urls,
		"--timeout", "6s", "--per-host", "16", "--retries", "0")

	// Sample every worker's resident memory while the run goes. A worker
	// may hold a --max-body of body per slot; the bound allows twice that
	// (garbage not yet collected), plus 64 MiB for the program: 224 MiB.
	// Measured: about 150 MiB. /huge sends without end (2 GB and more)
	// and /gzipbomb inflates to 1 GiB, so a worker that read either past
	// the limit would pass the bound many times over.
	const rssBound = 64<<20 + 2*slots*maxBody
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

// TestClusterRefusesClientsWithoutCredentials: during a run over ssh, with
// the queue on the bridge, a session with a started worker's key (learnt
// from its bootstrap) may do what that worker may, and nothing gets in
// without such a key: strangers from the root namespace and from a host of
// the cluster, the key under another worker's ID, a replayed login.
func TestClusterRefusesClientsWithoutCredentials(t *testing.T) {
	c := testcluster.New(t, 3)
	base := serveSiteIn(t, c.Hosts[2], 100)
	l, err := net.Listen("tcp", net.JoinHostPort(c.BridgeAddr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	queueAddr := l.Addr().String()
	l.Close()
	ssh, bootstraps := tapSSH(t, c)
	// The later --ssh wins over startClusterRun's.
	r := startClusterRun(t, c, "node1:2\nnode2:2\n", slowURLs(base, 100, 300), "--listen", queueAddr, "--ssh", ssh)
	r.waitRecords(t, 5)
	boots := bootstraps(2)
	boot, other := boots[0], boots[1]
	run := queue.Run{ID: boot.Run}
	tc := pinned(boot.Pin) // as the worker checks the queue

	// With the worker's key, signing the server's nonce over TLS, a session
	// by hand pulls a task from the workers' consumer, the reply on the
	// worker's own inbox, and hands it back: so the refusals below are the
	// key's doing, not the session's.
	connect, task, err := pullTask(queueAddr, tc, boot)
	if err != nil {
		t.Fatalf("with worker %s's key, no task pulled: %v", boot.Worker, err)
	}
	if !slices.Contains(slices.Collect(maps.Values(r.want)), task.URL) {
		t.Errorf("pulled task %+v is not one of the run's", task)
	}
	t.Logf("with worker %s's key: pulled and handed back task %d (%s)", boot.Worker, task.ID, task.URL)

	// The key is bound to its worker's ID; its signature to one nonce.
	for _, a := range []struct {
		name    string
		connect func(rawInfo) string
	}{
		{"the key under another started worker's ID", func(info rawInfo) string {
			s, _ := workerConnect(boot.NKeySeed, other.Worker, boot.Node, info)
			return s
		}},
		{"the key under a new ID", func(info rawInfo) string {
			s, _ := workerConnect(boot.NKeySeed, queue.NewWorkerID(), boot.Node, info)
			return s
		}},
		{"the key's CONNECT of another connection, replayed", func(rawInfo) string { return connect }},
	} {
		got, err := rawSession(queueAddr, tc, a.connect, run.TaskSubject(), run.ResultSubject(boot.Worker))
		if err == nil {
			err = checkRefused(got)
		}
		if err != nil {
			t.Errorf("%s: not refused: %v", a.name, err)
		}
	}

	// Strangers, from the root namespace and from a host of the cluster,
	// where workers dial from.
	probes := strangerProbes(queueAddr, run.TaskSubject(), run.ResultSubject(queue.NewWorkerID()))
	for _, p := range probes {
		if p.err != nil {
			t.Errorf("from the root namespace, %s: not refused: %v", p.name, p.err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := c.Hosts[0].Command(ctx, exe, "-test.run=^TestHelperNATSProbe$", "-test.v", "--",
		helperNATSProbe, queueAddr, run.TaskSubject(), run.ResultSubject(queue.NewWorkerID())).CombinedOutput()
	if n := len(probes); err != nil || !strings.Contains(string(out), "--- PASS: TestHelperNATSProbe") ||
		strings.Count(string(out), ": refused\n") != n {
		t.Errorf("probe from node1 (want %d refusals): %v\n%s", n, err, out)
	}

	select {
	case <-r.done:
		t.Fatalf("the run ended before the probes were done; they proved nothing")
	default:
	}
	if code := r.wait(t, time.Minute); code != 0 {
		t.Fatalf("exit %d\n%s", code, r.stderr.String())
	}
	// Nothing forged got in: exactly the input's records, all fetched, and
	// the task handed back fetched by a worker.
	for line, rec := range r.checkComplete(t) {
		if rec.Error != nil || rec.Node != "node1" && rec.Node != "node2" || rec.Title == forgedTitle {
			t.Errorf("line %d: node %q, title %q, error %+v", line, rec.Node, rec.Title, rec.Error)
		}
	}
}

// pinned checks a server by the pin of its certificate, as a worker the run
// started does.
func pinned(pin string) *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 || queue.CertPin(cs.PeerCertificates[0].Raw) != pin {
			return errors.New("not the run's certificate")
		}
		return nil
	}}
}

// pullTask logs in to the queue at addr as the worker boot was handed to,
// pulls one task from the workers' consumer with the reply on that worker's
// inbox, and hands it back (-NAK) for the run to deliver again. It returns
// the CONNECT it sent and the task.
func pullTask(addr string, tc *tls.Config, boot queue.Bootstrap) (string, scrape.Task, error) {
	var task scrape.Task
	c, err := dialRaw(addr, tc)
	if err != nil {
		return "", task, err
	}
	defer c.Close()
	connect, err := workerConnect(boot.NKeySeed, boot.Worker, boot.Node, c.info)
	if err != nil {
		return "", task, err
	}
	run := queue.Run{ID: boot.Run}
	inbox := queue.InboxPrefix(boot.Worker) + ".raw"
	next := "$JS.API.CONSUMER.MSG.NEXT." + run.TaskStream() + "." + queue.WorkerConsumer
	if err := c.send("CONNECT "+connect, "SUB "+inbox+" 1", pub(next, inbox, `{"batch":1,"expires":3000000000}`), "PING"); err != nil {
		return connect, task, err
	}
	// A message delivered by a pull keeps the subject it was published to;
	// the subscription it comes on (1) is the inbox's.
	got, msg, err := c.readUntil(func(line string) bool {
		return strings.HasPrefix(line, "-ERR") || strings.HasPrefix(line, "HMSG ") || strings.HasPrefix(line, "MSG ")
	})
	if err != nil || msg == nil || !strings.HasPrefix(msg.reply, "$JS.ACK.") || !strings.Contains(got, " 1 "+msg.reply+" ") {
		return connect, task, fmt.Errorf("no task delivered (%v): %q", err, got)
	}
	tasks, err := queue.DecodeTasks([]byte(msg.data))
	if err != nil {
		return connect, task, err
	}
	task = tasks[0]
	if err := c.send(pub(msg.reply, "", "-NAK"), "PING"); err != nil {
		return connect, task, err
	}
	got, _, err = c.readUntil(func(line string) bool { return line == "PONG\r\n" || strings.HasPrefix(line, "-ERR") })
	if err != nil || !strings.HasSuffix(got, "PONG\r\n") {
		return connect, task, fmt.Errorf("hand back task %d: %v %q", task.ID, err, got)
	}
	return connect, task, nil
}
