package coordinator

// In-process runs against hosts that fail: the breaker (breaker.go) and
// robots.txt tried again (robots.go).

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/scrape"
)

// deadHostRun runs n URLs of host with the run's default retries, backoff
// and breaker, and checks that every URL has exactly one record, of kind
// host_unreachable or else one of want, and that the summary counts and
// names them. It returns how long the run took.
func deadHostRun(t *testing.T, h *harness, host string, n int, want ...string) time.Duration {
	t.Helper()
	h.cfg.Retries, h.cfg.RetryBackoff, h.cfg.HostFailures = DefaultRetries, DefaultRetryBackoff, DefaultHostFailures
	var lines []string
	for i := range n {
		lines = append(lines, fmt.Sprintf("http://%s/%d", host, i))
	}
	start := time.Now()
	sum, err := h.run(lines)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	recs := h.records()
	got := byURL(t, recs)
	kinds := map[string]int{}
	var last string
	for _, l := range lines {
		r, ok := got[l]
		if !ok {
			t.Errorf("%s has no record", l)
			continue
		}
		if r.Error == nil {
			t.Errorf("%s: no error: %+v", l, r)
			continue
		}
		kinds[r.Error.Kind]++
		switch {
		case r.Error.Kind == scrape.KindHostUnreachable:
			last = r.Error.Message[strings.Index(r.Error.Message, "the last: ")+len("the last: "):]
			if !strings.HasPrefix(r.Error.Message, "host "+host+" unreachable") || !slices.Contains(want, strings.Split(last, ":")[0]) {
				t.Errorf("%s: %q, want the host and its last failure (%v)", l, r.Error.Message, want)
			}
		case !slices.Contains(want, r.Error.Kind):
			t.Errorf("%s: %+v, want host_unreachable or %v", l, r.Error, want)
		}
	}
	t.Logf("%d URLs in %s: %v", n, took.Round(time.Millisecond), kinds)
	if len(recs) != n {
		t.Errorf("%d records for %d URLs", len(recs), n)
	}
	unreachable := kinds[scrape.KindHostUnreachable]
	if unreachable < n/2 {
		t.Errorf("%d URLs recorded host_unreachable, want most of the %d", unreachable, n)
	}
	if len(sum.Unreachable) != 1 || sum.Unreachable[0] != (UnreachableHost{Host: host, URLs: unreachable, Error: last}) || sum.Errors[scrape.KindHostUnreachable] != unreachable {
		t.Errorf("summary: unreachable %+v, errors %v; want %s with %d URLs and %q", sum.Unreachable, sum.Errors, host, unreachable, last)
	}
	var printed bytes.Buffer
	sum.Print(&printed)
	if line := fmt.Sprintf("  host %s unreachable: %d URLs recorded as host_unreachable (%s)\n", host, unreachable, last); !strings.Contains(printed.String(), line) {
		t.Errorf("summary printed:\n%s\nwant the line\n%s", printed.String(), line)
	}
	return took
}

// 200 URLs of a port that refuses connections are done within seconds: the
// first few fail, one probe fails after the backoff, and the rest are
// recorded at once. Without the breaker, each waits out its retries' 1 s and
// 2 s backoffs at the head of the host's queue: over a minute.
func TestRunRefusedHostFailsFast(t *testing.T) {
	took := deadHostRun(t, newHarness(t, 4, 4), testsite.ClosedPort(t), 200, scrape.KindConnect)
	if took > 5*time.Second {
		t.Errorf("200 URLs of a refused port took %s, want under 5s", took)
	}
}

// A host that accepts connections and never answers costs its first URLs
// their --timeout, the probe one more, and no more: the run is done within
// 2 × --timeout and a few seconds. Without the breaker, 200 URLs × 3
// attempts, 8 at a time, take 75 s and more.
func TestRunHangingHostFailsFast(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	h := newHarness(t, 4, 4)
	h.cfg.Fetch.Timeout = time.Second
	took := deadHostRun(t, h, l.Addr().String(), 200, scrape.KindTimeout)
	if limit := 2*h.cfg.Fetch.Timeout + 5*time.Second; took > limit {
		t.Errorf("200 URLs of a hanging host took %s, want under %s", took, limit)
	}
	mu.Lock()
	t.Logf("%d connections made to the hanging host", len(conns))
	mu.Unlock()
}

// dropFirst is a listener that resets its first drop connections at once,
// as a host restarting does, and hands on the rest.
type dropFirst struct {
	net.Listener
	mu   sync.Mutex
	drop int
}

func (l *dropFirst) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		drop := l.drop > 0
		l.drop--
		l.mu.Unlock()
		if !drop {
			return c, nil
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
}

// A host that comes back is not written off: its first connections are
// reset, the breaker opens and holds its URLs, one goes as a probe and is
// answered, and then every page is fetched. The probe is seen alone: no
// other request reaches the host before it is answered (without the
// breaker, the refused tasks' retries arrive within their backoff's spread,
// less than the time the probe takes).
func TestRunHostComesBack(t *testing.T) {
	const pages, slow = 24, 500 * time.Millisecond
	var (
		mu      sync.Mutex
		arrived []time.Time
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived = append(arrived, time.Now())
		mu.Unlock()
		time.Sleep(slow)
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<title>back</title>")
	}))
	srv.Listener = &dropFirst{Listener: srv.Listener, drop: 8}
	srv.Start()
	t.Cleanup(srv.Close)
	h := newHarness(t, 4, 4)
	// The default limit of 8 sends the first 8 URLs at once, each to a
	// connection that is reset. A backoff of 400ms ±50% spreads their
	// retries over 400ms.
	h.cfg.HostFailures, h.cfg.RetryBackoff = DefaultHostFailures, 400*time.Millisecond
	var lines []string
	for i := range pages {
		lines = append(lines, fmt.Sprintf("%s/%d", srv.URL, i))
	}
	sum, err := h.run(lines)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := byURL(t, h.records())
	retried := 0
	for _, l := range lines {
		r := got[l]
		if r.Error != nil || r.Title != "back" {
			t.Errorf("%s: %+v, error %+v; want the page", l, r, r.Error)
		}
		if r.Attempts == 2 {
			retried++
		}
	}
	if retried != 8 || sum.OK != pages || len(sum.Unreachable) != 0 || sum.Retries != 8 {
		t.Errorf("%d pages on their second attempt, summary %d ok, %d retries, unreachable %v; want the 8 reset ones, all %d, 8, none", retried, sum.OK, sum.Retries, sum.Unreachable, pages)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(arrived) != pages {
		t.Fatalf("%d requests answered, want %d", len(arrived), pages)
	}
	if gap := arrived[1].Sub(arrived[0]); gap < slow-50*time.Millisecond {
		t.Errorf("the second request answered came %s after the first, which took %s: the probe was not alone", gap, slow)
	}
}

// robotsSite serves pages, and a robots.txt that answers each request in
// turn with the next of statuses (the last repeats); 200 serves rules.
func robotsSite(t *testing.T, rules string, statuses ...int) (*site, *httptest.Server) {
	var mu sync.Mutex
	n := 0
	return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			mu.Lock()
			status := statuses[min(n, len(statuses)-1)]
			n++
			mu.Unlock()
			w.WriteHeader(status)
			if status == 200 {
				io.WriteString(w, rules)
			}
			return
		}
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<title>page</title>")
	}))
}

// A robots.txt that answers 503 through its retries disallows the site
// (RFC 9309), and its records say that is why: not that robots.txt named
// the pages. None of them is requested.
func TestRunRobotsTxt5xx(t *testing.T) {
	web, srv := robotsSite(t, "", http.StatusServiceUnavailable)
	h := newHarness(t, 2)
	h.cfg.IgnoreRobots = false
	paths := []string{"/a", "/b", "/c/d"}
	var lines []string
	for _, p := range paths {
		lines = append(lines, srv.URL+p)
	}
	sum, err := h.run(lines)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	const want = "robots.txt answered 503: treated as disallow-all (RFC 9309); --ignore-robots overrides"
	got := byURL(t, h.records())
	for _, p := range paths {
		if r := got[srv.URL+p]; r.Error == nil || r.Error.Kind != scrape.KindRobotsDisallowed || r.Error.Message != want || r.Attempts != 0 {
			t.Errorf("%s: %+v, want robots_disallowed saying %q", p, r.Error, want)
		}
		if n := web.Hits(p); n != 0 {
			t.Errorf("%s requested %d times", p, n)
		}
	}
	if n := web.Hits("/robots.txt"); n != h.cfg.Retries+1 {
		t.Errorf("robots.txt requested %d times, want %d: once and each retry", n, h.cfg.Retries+1)
	}
	if sum.Errors[scrape.KindRobotsDisallowed] != len(paths) {
		t.Errorf("summary errors %v", sum.Errors)
	}
}

// A robots.txt that answers 503 twice and then its rules is obeyed.
func TestRunRobotsTxtRecovers(t *testing.T) {
	web, srv := robotsSite(t, "User-agent: *\nDisallow: /private\n", 503, 503, 200)
	h := newHarness(t, 2)
	h.cfg.IgnoreRobots = false
	sum, err := h.run([]string{srv.URL + "/a", srv.URL + "/private/x", srv.URL + "/b"})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := byURL(t, h.records())
	for _, p := range []string{"/a", "/b"} {
		if r := got[srv.URL+p]; r.Error != nil || r.Title != "page" || web.Hits(p) != 1 {
			t.Errorf("%s: %+v (error %+v), requested %d times; want it fetched once", p, r, r.Error, web.Hits(p))
		}
	}
	want := "robots.txt of " + strings.TrimPrefix(srv.URL, "http://") + " disallows it"
	if r := got[srv.URL+"/private/x"]; r.Error == nil || r.Error.Kind != scrape.KindRobotsDisallowed || r.Error.Message != want || web.Hits("/private/x") != 0 {
		t.Errorf("/private/x: %+v, requested %d times; want %q unrequested", r.Error, web.Hits("/private/x"), want)
	}
	if n := web.Hits("/robots.txt"); n != 3 {
		t.Errorf("robots.txt requested %d times, want 3", n)
	}
	if sum.OK != 2 {
		t.Errorf("summary: %d ok, want 2", sum.OK)
	}
}
