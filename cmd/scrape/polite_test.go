package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/scrape"
)

// serveHandler serves h on addr (host or host:port) for the test's length
// and returns its base URL.
func serveHandler(t *testing.T, addr string, h http.Handler) string {
	t.Helper()
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "0")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

// scrapeRecords runs scrape run to completion and returns its records by line.
func scrapeRecords(t *testing.T, urls []string, mf string, args ...string) (map[int]record, string) {
	t.Helper()
	want := map[int]string{}
	var b strings.Builder
	for i, u := range urls {
		b.WriteString(u + "\n")
		want[i+1] = u
	}
	out := filepath.Join(t.TempDir(), "out.json")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	// --per-slot 1: the callers' machinefiles count pages in flight.
	cmd := scrapeCmd(t, ctx, append([]string{"run", "-f", writeFile(t, "mf", mf), writeFile(t, "urls.txt", b.String()), "-o", out, "--per-slot", "1"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scrape run: %v\n%s", err, stderr.String())
	}
	return byLine(t, readJSON(t, out), want), stderr.String()
}

// threeNodes is 3 nodes × 8 slots, all on this machine.
const threeNodes = "localhost:8\n127.0.0.1:8\n127.0.0.2:8\n"

func TestPolitenessHoldsAcrossTheCluster(t *testing.T) {
	site := testsite.New(100)
	t.Cleanup(site.Close)
	rec := &testsite.Recorder{Handler: site, Robots: "User-agent: *\nDisallow: /private/\n"}
	base := serveHandler(t, "127.0.0.1", rec)

	var urls []string
	for i := range 40 {
		urls = append(urls, fmt.Sprintf("%s/slow/30/%d", base, i))
	}
	for i := range 5 {
		urls = append(urls, fmt.Sprintf("%s/private/%d", base, i))
	}
	const delay = 50 * time.Millisecond
	got, _ := scrapeRecords(t, urls, threeNodes, "--per-host", "2", "--delay", delay.String())

	host := strings.TrimPrefix(base, "http://")
	if m := rec.MaxInFlight(host); m > 2 || m == 0 {
		t.Errorf("%d requests in flight at once, want at most 2", m)
	}
	starts := rec.Starts(host)
	if len(starts) != 40 {
		t.Errorf("%d requests, want 40 (robots.txt-disallowed pages must not be requested)", len(starts))
	}
	for _, p := range testsite.SpacingProblems(starts, delay) {
		t.Error(p)
	}
	for line, r := range got {
		private := strings.Contains(r.URL, "/private/")
		switch {
		case private && (r.Error == nil || r.Error.Kind != scrape.KindRobotsDisallowed):
			t.Errorf("line %d %s: %+v, want robots_disallowed", line, r.URL, r.Error)
		case !private && r.Error != nil:
			t.Errorf("line %d %s: %+v", line, r.URL, r.Error)
		}
	}
	for i := range 5 {
		if n := rec.Requests(fmt.Sprintf("/private/%d", i)); n != 0 {
			t.Errorf("/private/%d requested %d times", i, n)
		}
	}
}

func TestIgnoreRobots(t *testing.T) {
	site := testsite.New(5)
	t.Cleanup(site.Close)
	rec := &testsite.Recorder{Handler: site, Robots: "User-agent: *\nDisallow: /\n"}
	base := serveHandler(t, "127.0.0.1", rec)
	got, _ := scrapeRecords(t, []string{base + "/page/1", base + "/page/2"}, "localhost:2", "--ignore-robots")
	for _, r := range got {
		if r.Error != nil {
			t.Errorf("%s: %+v", r.URL, r.Error)
		}
	}
}

// The per-host limit must not make unrelated hosts wait for each other.
func TestPerHostLimitKeepsManyHostsBusy(t *testing.T) {
	site := testsite.New(50)
	t.Cleanup(site.Close)
	rec := &testsite.Recorder{Handler: site}
	var urls []string
	const hosts = 24
	for h := range hosts {
		// Every 127.0.0.0/8 address is this machine: one host each.
		base := serveHandler(t, fmt.Sprintf("127.0.1.%d", h+1), rec)
		for i := range 6 {
			urls = append(urls, fmt.Sprintf("%s/slow/200/%d", base, i))
		}
	}
	scrapeRecords(t, urls, threeNodes, "--per-host", "1")
	if n := len(rec.Hosts()); n != hosts {
		t.Fatalf("%d hosts were requested, want %d", n, hosts)
	}
	for _, h := range rec.Hosts() {
		if m := rec.MaxInFlight(h); m != 1 {
			t.Errorf("%s had %d requests in flight at once, want 1", h, m)
		}
	}
	// 24 slots and 24 hosts with one request each at a time: most slots
	// must have been busy together. Serialising hosts would give 1.
	if m := rec.MaxTotal(); m < 16 {
		t.Errorf("at most %d requests in flight across %d hosts, want 16 or more", m, hosts)
	}
}

func TestSummarySaysWhenPerHostHeldTheRunBack(t *testing.T) {
	site := testsite.New(50)
	t.Cleanup(site.Close)
	base := serveHandler(t, "127.0.0.1", site)
	var urls []string
	for i := range 20 {
		urls = append(urls, fmt.Sprintf("%s/slow/100/%d", base, i))
	}
	_, stderr := scrapeRecords(t, urls, "localhost:8", "--per-host", "1")
	if !strings.Contains(stderr, "--per-host") {
		t.Errorf("summary does not name --per-host:\n%s", stderr)
	}
	_, stderr = scrapeRecords(t, urls, "localhost:8", "--per-host", "8")
	if strings.Contains(stderr, "held the run back") {
		t.Errorf("summary blames --per-host when it did not hold the run back:\n%s", stderr)
	}
}

// flaky fails the first fails requests of each path with status, sending
// Retry-After when retryAfter is set, then serves the site's page 0.
type flaky struct {
	site       http.Handler
	fails      int
	status     int
	retryAfter string

	mu    sync.Mutex
	times map[string][]time.Time
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if f.times == nil {
		f.times = map[string][]time.Time{}
	}
	f.times[r.URL.Path] = append(f.times[r.URL.Path], time.Now())
	n := len(f.times[r.URL.Path])
	f.mu.Unlock()
	if n <= f.fails {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		w.WriteHeader(f.status)
		return
	}
	r.URL.Path = "/page/0"
	f.site.ServeHTTP(w, r)
}

func (f *flaky) requests(path string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.times[path]
}

func TestRetries(t *testing.T) {
	site := testsite.New(5)
	t.Cleanup(site.Close)
	unavailable := &flaky{site: site, fails: 2, status: 503}
	limited := &flaky{site: site, fails: 1, status: 429, retryAfter: "1"}
	missing := &flaky{site: site, fails: 5, status: 404}
	broken := &flaky{site: site, fails: 5, status: 500}
	mux := http.NewServeMux()
	mux.Handle("/unavailable/", unavailable)
	mux.Handle("/limited/", limited)
	mux.Handle("/missing/", missing)
	mux.Handle("/broken/", broken)
	mux.Handle("/", site)
	base := serveHandler(t, "127.0.0.1", mux)

	urls := []string{base + "/unavailable/a", base + "/limited/a", base + "/missing/a", base + "/broken/a", base + "/hang"}
	got, stderr := scrapeRecords(t, urls, "localhost:4", "--retries", "2", "--retry-backoff", "50ms", "--timeout", "300ms")

	tests := []struct {
		line     int
		attempts int
		kind     string
		requests int
		handler  *flaky
		path     string
	}{
		{1, 3, "", 3, unavailable, "/unavailable/a"},            // two 503s, then the page
		{2, 2, "", 2, limited, "/limited/a"},                    // one 429, then the page
		{3, 1, scrape.KindHTTPStatus, 1, missing, "/missing/a"}, // a 404 is final
		{4, 3, scrape.KindHTTPStatus, 3, broken, "/broken/a"},   // 500s until attempts run out
		{5, 3, scrape.KindTimeout, 0, nil, ""},
	}
	for _, tt := range tests {
		r := got[tt.line]
		kind := ""
		if r.Error != nil {
			kind = r.Error.Kind
		}
		if r.Attempts != tt.attempts || kind != tt.kind {
			t.Errorf("%s: attempts %d error %q, want %d %q", r.URL, r.Attempts, kind, tt.attempts, tt.kind)
		}
		if tt.handler != nil {
			if n := len(tt.handler.requests(tt.path)); n != tt.requests {
				t.Errorf("%s requested %d times, want %d", tt.path, n, tt.requests)
			}
		}
	}
	if r := got[4]; r.Status != 500 {
		t.Errorf("a final failure keeps its last status: %d", r.Status)
	}
	if ts := limited.requests("/limited/a"); len(ts) == 2 && ts[1].Sub(ts[0]) < 950*time.Millisecond {
		t.Errorf("Retry-After: 1 not honoured: retried after %s", ts[1].Sub(ts[0]))
	}
	if !strings.Contains(stderr, "retries: 7") {
		t.Errorf("summary does not count 7 retries:\n%s", stderr)
	}
}
