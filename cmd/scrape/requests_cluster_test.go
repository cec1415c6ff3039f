package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testcluster"
	"github.com/scrape-cluster/scrape/internal/testsite"
)

const helperForwardProxy = "forward-proxy" // -- forward-proxy ADDR LOG

// TestHelperForwardProxy serves a forward proxy on ADDR until it is
// killed, appending a line to the file LOG for each request it passes on.
func TestHelperForwardProxy(t *testing.T) {
	args := helperArgs(t, helperForwardProxy, 2)
	log, err := os.OpenFile(args[1], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", args[0])
	if err != nil {
		t.Fatal(err)
	}
	proxy := testsite.NewProxy()
	var mu sync.Mutex
	logged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		from, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		fmt.Fprintf(log, "%s %s\n", from, r.RequestURI)
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: logged, ReadHeaderTimeout: 5 * time.Second}
	t.Fatal(srv.Serve(l))
}

// serveProxyIn starts a forward proxy on h at port, and returns its URL and
// its request log.
func serveProxyIn(t *testing.T, h *testcluster.Host, port string) (string, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(h.Addr, port)
	log := filepath.Join(t.TempDir(), "proxy.log")
	h.Start(t, exe, "-test.run=^TestHelperForwardProxy$", "-test.timeout=0", "--", helperForwardProxy, addr, log)
	waitFor(t, 10*time.Second, "the proxy on "+addr, func() bool {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	return "http://" + addr, log
}

// A login on one node holds on every node: the coordinator's jar keeps the
// cookie /login set and sends it with the member pages, which a crawl over
// two nodes then fetches, each node some of them.
func TestClusterSessionLogin(t *testing.T) {
	c := testcluster.New(t, 3) // node3 only serves the site
	// 60 pages of 50 ms, one at a time a node: 3 s for a node alone,
	// time enough for both to start and share them.
	const members = 60
	base := serveSiteIn(t, c.Hosts[2], members)
	login := base + "/login"

	for _, tt := range []struct {
		name    string
		session bool
	}{{"without --session", false}, {"with --session", true}} {
		t.Run(tt.name, func(t *testing.T) {
			extra := []string{"--depth", "1"}
			if tt.session {
				extra = append(extra, "--session")
			}
			r := startClusterRun(t, c, "node1\nnode2\n", []string{login}, extra...)
			if code := r.wait(t, 2*time.Minute); code != 0 {
				t.Fatalf("exit %d\n%s", code, r.stderr.String())
			}
			recs := readJSON(t, r.out)
			ok, nodes := 0, map[string]int{}
			for _, rec := range recs {
				if strings.HasPrefix(rec.URL, base+"/members/") && rec.Status == http.StatusOK && rec.Error == nil {
					ok++
					nodes[rec.Node]++
				}
			}
			if !tt.session {
				// The site must need its cookie, or the test proves nothing.
				if ok != 0 || len(recs) != 1 || recs[0].Status != http.StatusForbidden {
					t.Fatalf("without a session: %d member pages fetched, %d records, login status %d; want none, 1, 403", ok, len(recs), recs[0].Status)
				}
				return
			}
			if len(recs) != members+1 || ok != members {
				t.Fatalf("%d records, %d member pages fetched; want %d and %d", len(recs), ok, members+1, members)
			}
			if nodes["node1"] == 0 || nodes["node2"] == 0 {
				t.Errorf("member pages by node %v: want both nodes to fetch some with the shared cookie", nodes)
			}
			t.Logf("member pages by node: %v", nodes)
		})
	}
}

// A pool of two proxies is shared round-robin by every node, and each
// record names the proxy it went through.
func TestClusterProxyPool(t *testing.T) {
	c := testcluster.New(t, 3) // node3 serves the site and both proxies
	base := serveSiteIn(t, c.Hosts[2], 100)
	p1, log1 := serveProxyIn(t, c.Hosts[2], "3128")
	p2, log2 := serveProxyIn(t, c.Hosts[2], "3129")
	urls := slowURLs(base, 20, 200)

	r := startClusterRun(t, c, "node1:2\nnode2:2\n", urls, "--proxy", p1, "--proxy", p2)
	if code := r.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("exit %d\n%s", code, r.stderr.String())
	}
	got := r.checkComplete(t)
	byProxy := map[string]int{}
	byNodeProxy := map[string]int{}
	for line, rec := range got {
		if rec.Error != nil {
			t.Errorf("line %d: %+v", line, rec.Error)
		}
		byProxy[rec.Proxy]++
		byNodeProxy[rec.Node+" "+rec.Proxy]++
	}
	// Each worker alternates on its own, so each proxy takes half, give or
	// take one a worker.
	for _, p := range []string{p1, p2} {
		if n := byProxy[p]; n < len(urls)/2-2 || n > len(urls)/2+2 {
			t.Errorf("%d records name %s, want about %d (records by proxy: %v)", n, p, len(urls)/2, byProxy)
		}
	}
	for _, k := range []string{"node1 " + p1, "node1 " + p2, "node2 " + p1, "node2 " + p2} {
		if byNodeProxy[k] == 0 {
			t.Errorf("no page for %q: by node and proxy %v", k, byNodeProxy)
		}
	}
	// The proxies' own logs agree: every page went through one of them,
	// from the workers' hosts, never from the site's own.
	seen := 0
	for _, log := range []string{log1, log2} {
		data, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(data)) {
			if from := strings.Fields(line)[0]; from != c.Hosts[0].Addr && from != c.Hosts[1].Addr {
				t.Errorf("proxy request from %s: %q", from, line)
			}
			seen++
		}
	}
	if seen != len(urls) {
		t.Errorf("the proxies passed on %d requests, want %d", seen, len(urls))
	}
	t.Logf("records by node and proxy: %v", byNodeProxy)

	// Per-node proxies from the machinefile replace the run's pool there.
	r = startClusterRun(t, c, fmt.Sprintf("node1:2 proxy=%s\nnode2:2 proxy=%s\n", p1, p2), urls[:40])
	if code := r.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("per-node proxies: exit %d\n%s", code, r.stderr.String())
	}
	for line, rec := range r.checkComplete(t) {
		if want := map[string]string{"node1": p1, "node2": p2}[rec.Node]; rec.Error != nil || rec.Proxy != want {
			t.Errorf("per-node proxies: line %d fetched by %s through %q (error %v), want %s", line, rec.Node, rec.Proxy, rec.Error, want)
		}
	}
}
