package coordinator

// In-process runs of the real coordinator: New(cfg).Run(ctx) with its
// embedded queue, real workers started by inprocLauncher, a local web site
// and a JSONL output read back afterwards. They are what `go test -race`
// sees of the coordinator at work.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/machinefile"
	"github.com/scrape-cluster/scrape/scrape"
)

// harness is one in-process run: its config, launcher, stderr and files.
type harness struct {
	t        *testing.T
	log      *testLog
	launcher *inprocLauncher
	cfg      Config
	stderr   *bytes.Buffer // written by the run alone, read after it
	out      string
	state    string
}

// newHarness prepares a run on one "localhost" node per entry of slots
// (the second is named localhost#2, and so on).
func newHarness(t *testing.T, slots ...int) *harness {
	log := newTestLog(t)
	dir := t.TempDir()
	h := &harness{
		t:        t,
		log:      log,
		launcher: newInprocLauncher(t, log),
		stderr:   &bytes.Buffer{},
		out:      filepath.Join(dir, "out.jsonl"),
		state:    filepath.Join(dir, "state"),
	}
	var hosts []machinefile.Host
	for i, s := range slots {
		hosts = append(hosts, machinefile.Host{Name: "localhost", Slots: s, Line: i + 1})
	}
	h.cfg = Config{
		Hosts: hosts,
		// The tests below count a slot as one page in flight: a node of 4
		// slots fetches 4 pages at a time, as its test says.
		PerSlot:      1,
		Output:       h.out,
		Stdout:       io.Discard,
		Stderr:       h.stderr,
		Listen:       "127.0.0.1:0",
		Launcher:     h.launcher,
		StateDir:     h.state,
		Logger:       log.logger(slog.LevelInfo, "[coordinator] "),
		IgnoreRobots: true,
		Retries:      2,
		RetryBackoff: 20 * time.Millisecond,
		Fetch:        scrape.Config{Timeout: 10 * time.Second},
	}
	return h
}

// run runs the coordinator on lines as the urls file, bounded by a minute.
func (h *harness) run(lines []string) (*Summary, error) {
	h.t.Helper()
	h.cfg.Input = strings.NewReader(strings.Join(lines, "\n") + "\n")
	c, err := New(h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(h.t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	sum, err := c.Run(ctx)
	h.t.Logf("run took %s: %v", time.Since(start).Round(time.Millisecond), err)
	if ctx.Err() != nil {
		h.t.Fatalf("run did not end within a minute: %v", err)
	}
	if s := h.stderr.String(); s != "" {
		h.t.Logf("stderr:\n%s", s)
	}
	return sum, err
}

// records reads the run's JSONL output back.
func (h *harness) records() []scrape.Result {
	h.t.Helper()
	f, err := os.Open(h.out)
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	var recs []scrape.Result
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r scrape.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			h.t.Fatalf("output line %d: %v: %q", len(recs)+1, err, sc.Text())
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		h.t.Fatal(err)
	}
	return recs
}

// byURL indexes records by URL, failing the test on a URL seen twice.
func byURL(t *testing.T, recs []scrape.Result) map[string]scrape.Result {
	t.Helper()
	m := map[string]scrape.Result{}
	for _, r := range recs {
		if _, dup := m[r.URL]; dup {
			t.Errorf("%s has two records", r.URL)
		}
		m[r.URL] = r
	}
	return m
}

// site counts what a web site is asked: hits per path, and requests in
// flight now and at most.
type site struct {
	next http.Handler

	mu       sync.Mutex
	hits     map[string]int
	arrived  map[string][]time.Time
	inflight map[string]int // by path
	now      int
	peak     int
}

// serve serves h, counted, on a loopback port until the test ends.
func serve(t *testing.T, h http.Handler) (*site, *httptest.Server) {
	s := &site{next: h, hits: map[string]int{}, arrived: map[string][]time.Time{}, inflight: map[string]int{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	s.mu.Lock()
	s.hits[p]++
	s.arrived[p] = append(s.arrived[p], time.Now())
	s.inflight[p]++
	s.now++
	s.peak = max(s.peak, s.now)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight[p]--
		s.now--
		s.mu.Unlock()
	}()
	s.next.ServeHTTP(w, r)
}

func (s *site) Hits(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// Arrived are the times requests for path arrived, in order.
func (s *site) Arrived(path string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.arrived[path])
}

// InFlight is how many requests are being served now, and their paths.
func (s *site) InFlight() (int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var paths []string
	for p, n := range s.inflight {
		if n > 0 {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	return s.now, paths
}

// Peak is the most requests that were in flight at once.
func (s *site) Peak() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// waitFor polls cond every 10 ms and fails the test if it does not hold
// within limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Every line of the urls file gets exactly one record, valid or not, and the
// summary counts what the file holds; no page is fetched twice.
func TestRunWritesEveryLineExactlyOnce(t *testing.T) {
	const pages = 300
	ts := testsite.New(pages)
	web, srv := serve(t, ts)
	t.Cleanup(ts.Close) // before the server's Close, which waits for handlers
	h := newHarness(t, 4, 4)

	var lines []string
	for i := range pages {
		switch i {
		case 10:
			lines = append(lines, "not a url")
		case 50:
			lines = append(lines, "ftp://example.com/file")
		case 120:
			lines = append(lines, "# a comment, no record", "")
		case 200:
			lines = append(lines, "http://")
		case 250:
			lines = append(lines, "http://example.com:99999/x")
		}
		lines = append(lines, srv.URL+"/page/"+strconv.Itoa(i))
	}
	sum, err := h.run(lines)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	recs := h.records()

	byLine := map[int]scrape.Result{}
	for _, r := range recs {
		if _, dup := byLine[r.Line]; dup {
			t.Errorf("line %d has two records", r.Line)
		}
		byLine[r.Line] = r
	}
	want := 0
	for i, text := range lines {
		line := i + 1
		r, ok := byLine[line]
		switch {
		case text == "" || strings.HasPrefix(text, "#"):
			if ok {
				t.Errorf("line %d (%q) has a record: %+v", line, text, r)
			}
			continue
		case !ok:
			t.Errorf("line %d (%s) has no record", line, text)
			continue
		}
		want++
		if r.URL != text {
			t.Errorf("line %d: record for %q, want %q", line, r.URL, text)
		}
		n, isPage := strings.CutPrefix(text, srv.URL+"/page/")
		if !isPage {
			if r.Error == nil || r.Error.Kind != scrape.KindInvalidURL {
				t.Errorf("line %d (%q): %+v, want an invalid_url error", line, text, r.Error)
			}
			continue
		}
		p, _ := strconv.Atoi(n)
		if r.Error != nil || r.Status != 200 || r.Title != testsite.Title(p) || r.Attempts != 1 || (r.Node != "localhost" && r.Node != "localhost#2") {
			t.Errorf("line %d: %+v", line, r)
		}
		if hits := web.Hits("/page/" + n); hits != 1 {
			t.Errorf("/page/%s fetched %d times", n, hits)
		}
	}
	const invalidLines = 4
	if len(recs) != want || want != pages+invalidLines {
		t.Errorf("%d records for %d lines with URLs or text (want %d)", len(recs), want, pages+invalidLines)
	}
	if sum.Records != want || sum.OK != pages || sum.Errors[scrape.KindInvalidURL] != invalidLines || len(sum.Errors) != 1 {
		t.Errorf("summary: %d records, %d ok, errors %v; want %d, %d, %d invalid_url", sum.Records, sum.OK, sum.Errors, want, pages, invalidLines)
	}
	perNode := 0
	for _, n := range sum.PerNode {
		perNode += n
	}
	if perNode != pages || sum.Nodes != 2 || sum.Outstanding != 0 || sum.Retries != 0 {
		t.Errorf("summary: per node %v (sum %d, want %d), %d nodes, %d outstanding, %d retries", sum.PerNode, perNode, pages, sum.Nodes, sum.Outstanding, sum.Retries)
	}
	if st, err := readRunState(h.state); err != nil || !st.Finished {
		t.Errorf("run state after a finished run: %+v, %v", st, err)
	}
}

// A node killed while it has pages in flight loses nothing: its tasks go to
// the other node once their ack wait has passed, and every URL still has
// exactly one record.
// A node killed mid-run: its pages in flight are fetched again by the
// other, after the ack wait, and nothing else is. With 16 slots a node's
// tasks come four to a message (taskBatch): the batches the dead node held
// are delivered whole to the survivor, which fetches only their open tasks.
func TestRunWorkerKilledMidRun(t *testing.T) {
	for _, slots := range []int{4, 16} {
		t.Run(fmt.Sprintf("%d slots", slots), func(t *testing.T) { killMidRun(t, slots) })
	}
}

func killMidRun(t *testing.T, slots int) {
	pages := 10 * slots
	ts := testsite.New(pages)
	web, srv := serve(t, ts)
	t.Cleanup(ts.Close) // before the server's Close, which waits for handlers
	h := newHarness(t, slots, slots)
	h.cfg.AckWait = 2 * time.Second
	h.cfg.PerHost = 4 * slots // the site is one host: room for what the nodes hold besides their slots

	var lines []string
	for i := range pages {
		lines = append(lines, fmt.Sprintf("%s/slow/300/%d", srv.URL, i))
	}
	var (
		killedAt time.Time
		inFlight []string
	)
	killed, ran := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(killed)
		// Both nodes busy: each fetches at most its slots at once, so the
		// doomed node has its full share of pages in flight.
		for {
			if n, paths := web.InFlight(); n == 2*slots {
				if p := h.launcher.process("localhost#2"); p != nil {
					killedAt, inFlight = time.Now(), paths
					p.Kill()
					return
				}
			}
			select {
			case <-ran:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	sum, err := h.run(lines)
	close(ran)
	<-killed
	if killedAt.IsZero() {
		t.Fatal("never saw both nodes with their slots full: nothing was killed")
	}
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("killed localhost#2 with %v in flight", inFlight)
	recs := h.records()
	got := byURL(t, recs)
	for _, l := range lines {
		r, ok := got[l]
		if !ok {
			t.Errorf("%s has no record", l)
			continue
		}
		if r.Error != nil || r.Status != 200 {
			t.Errorf("%s: %+v", l, r)
		}
	}
	if len(recs) != pages || sum.Records != pages || sum.OK != pages || sum.Outstanding != 0 {
		t.Errorf("%d records, summary %d records, %d ok, %d outstanding; want %d", len(recs), sum.Records, sum.OK, sum.Outstanding, pages)
	}
	// The killed node's pages in flight were cut off at the site and
	// fetched again, by the survivor; nothing else was fetched twice.
	var again []string
	for i := range pages {
		path := fmt.Sprintf("/slow/300/%d", i)
		switch n := web.Hits(path); {
		case n == 2:
			again = append(again, path)
			if !slices.Contains(inFlight, path) {
				t.Errorf("%s fetched twice, but was not in flight when the node was killed", path)
			}
			if r := got[srv.URL+path]; r.Node != "localhost" {
				t.Errorf("%s, in flight on the killed node, recorded by %q", path, r.Node)
			}
			// Not handed back by the dying worker, which would have it
			// fetched again at once: taken back by the queue once the ack
			// wait ran out, which the worker's last heartbeat, a third of
			// the wait before its death at most, shortens.
			if after := web.Arrived(path)[1].Sub(killedAt); after < h.cfg.AckWait/2 {
				t.Errorf("%s fetched again %s after the kill, before its ack wait of %s could pass: the killed worker handed it back", path, after, h.cfg.AckWait)
			}
		case n != 1:
			t.Errorf("%s fetched %d times", path, n)
		}
	}
	// All of the killed node's pages, unless one of them was done the
	// moment it died.
	if len(again) == 0 || len(again) > slots {
		t.Errorf("%d pages fetched again (%v), want the killed node's %d", len(again), again, slots)
	}
	for _, r := range recs {
		if r.Node == "localhost#2" && r.FetchedAt.After(killedAt) {
			t.Errorf("%s recorded by the killed node, fetched at %s, after its death at %s", r.URL, r.FetchedAt, killedAt)
		}
	}
	if !strings.Contains(h.stderr.String(), "lost node localhost#2") {
		t.Errorf("stderr does not report the lost node:\n%s", h.stderr.String())
	}
	if sum.Nodes != 2 {
		t.Errorf("summary counts %d nodes, want 2", sum.Nodes)
	}
}

// A passing failure is tried again, Retries times at most: a page that
// fails twice and then works is recorded as it finally was, and one that
// always fails gets its error record after Retries+1 attempts.
func TestRunRetriesPassingFailures(t *testing.T) {
	var mu sync.Mutex
	flaky := 0
	web, srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		switch r.URL.Path {
		case "/flaky":
			mu.Lock()
			flaky++
			n := flaky
			mu.Unlock()
			if n <= 2 {
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, "<title>Busy</title>")
				return
			}
			io.WriteString(w, "<title>Flaky</title>")
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "<title>Down</title>")
		case "/gone":
			http.NotFound(w, r)
		default:
			io.WriteString(w, "<title>OK</title>")
		}
	}))
	h := newHarness(t, 2)
	sum, err := h.run([]string{srv.URL + "/flaky", srv.URL + "/down", srv.URL + "/gone", srv.URL + "/ok"})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := byURL(t, h.records())
	attempts := h.cfg.Retries + 1
	if r := got[srv.URL+"/flaky"]; r.Error != nil || r.Status != 200 || r.Title != "Flaky" || r.Attempts != attempts {
		t.Errorf("/flaky: %+v, want it fine on attempt %d", r, attempts)
	}
	if r := got[srv.URL+"/down"]; r.Error == nil || r.Error.Kind != scrape.KindHTTPStatus || r.Status != 503 || r.Attempts != attempts {
		t.Errorf("/down: %+v, want its 503 after %d attempts", r, attempts)
	}
	if r := got[srv.URL+"/gone"]; r.Error == nil || r.Status != 404 || r.Attempts != 1 {
		t.Errorf("/gone: %+v, want its 404 at once", r)
	}
	for path, want := range map[string]int{"/flaky": attempts, "/down": attempts, "/gone": 1, "/ok": 1} {
		if n := web.Hits(path); n != want {
			t.Errorf("%s requested %d times, want %d", path, n, want)
		}
	}
	if sum.Retries != 2*h.cfg.Retries || sum.Records != 4 || sum.OK != 2 || sum.Errors[scrape.KindHTTPStatus] != 2 {
		t.Errorf("summary: %d retries, %d records, %d ok, errors %v; want %d retries, 4, 2, http_status 2", sum.Retries, sum.Records, sum.OK, sum.Errors, 2*h.cfg.Retries)
	}
}

// The per-host limit holds for the whole cluster: with slots to spare, each
// host still sees no more than PerHost requests at once, and the summary
// says the limit held the run back.
func TestRunPerHostLimit(t *testing.T) {
	const perHost, pagesPerHost = 2, 24
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(60 * time.Millisecond)
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<title>slow</title>")
	})
	webA, srvA := serve(t, slow)
	webB, srvB := serve(t, slow)
	h := newHarness(t, 8, 8)
	h.cfg.PerHost = perHost
	var lines []string
	for i := range pagesPerHost {
		lines = append(lines, fmt.Sprintf("%s/%d", srvA.URL, i), fmt.Sprintf("%s/%d", srvB.URL, i))
	}
	sum, err := h.run(lines)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	recs := h.records()
	byURL(t, recs)
	if len(recs) != 2*pagesPerHost || sum.OK != 2*pagesPerHost {
		t.Errorf("%d records, %d ok; want %d", len(recs), sum.OK, 2*pagesPerHost)
	}
	for name, web := range map[string]*site{"A": webA, "B": webB} {
		// Reaching the limit shows it was tested, not merely unmet.
		if p := web.Peak(); p != perHost {
			t.Errorf("host %s saw %d requests at once, want the limit %d", name, p, perHost)
		}
	}
	if sum.PerHost != perHost || sum.PerHostHeld <= 0 {
		t.Errorf("summary: per host %d, held %s; want %d and the time it held idle slots back", sum.PerHost, sum.PerHostHeld, perHost)
	}
}

// A crawl of depth 2 within the seed's host fetches every page it can reach
// in two links exactly once, asks robots.txt first and obeys it, and
// touches nothing beyond its depth or host.
func TestRunCrawl(t *testing.T) {
	elsewhere, other := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<title>elsewhere</title>")
	}))
	links := map[string][]string{
		"/a": {"/b", "/c", other.URL + "/x", "/a", "/a#top", "mailto:someone@example.com"},
		"/b": {"/d", "/c"},
		"/c": {"/e", "/a", "/nope"},
		"/d": {"/f"}, // depth 3: not followed
		"/e": {"/g"}, // disallowed: not fetched, so /g is never found
		"/f": nil,
		"/g": nil,
	}
	web, srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			io.WriteString(w, "User-agent: *\nDisallow: /nope\n")
			return
		}
		out, ok := links[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<title>%s</title><body>", r.URL.Path)
		for _, l := range out {
			fmt.Fprintf(w, `<a href="%s">x</a>`, l)
		}
	}))
	h := newHarness(t, 2, 2)
	h.cfg.Depth, h.cfg.SameHost, h.cfg.IgnoreRobots = 2, true, false
	sum, err := h.run([]string{srv.URL + "/a"})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := byURL(t, h.records())
	want := map[string]struct {
		depth  int
		parent string
	}{
		"/a": {0, ""}, "/b": {1, "/a"}, "/c": {1, "/a"}, "/d": {2, "/b"}, "/e": {2, "/c"}, "/nope": {2, "/c"},
	}
	for path, w := range want {
		r, ok := got[srv.URL+path]
		if !ok {
			t.Errorf("%s has no record", path)
			continue
		}
		parent := ""
		if w.parent != "" {
			parent = srv.URL + w.parent
		}
		if r.Depth != w.depth || r.Parent != parent {
			t.Errorf("%s: depth %d, parent %q; want %d, %q", path, r.Depth, r.Parent, w.depth, parent)
		}
		switch path {
		case "/nope":
			if r.Error == nil || r.Error.Kind != scrape.KindRobotsDisallowed {
				t.Errorf("/nope: %+v, want robots.txt to refuse it", r)
			}
			if n := web.Hits(path); n != 0 {
				t.Errorf("/nope, disallowed, requested %d times", n)
			}
		default:
			if r.Error != nil || r.Title != path {
				t.Errorf("%s: %+v", path, r)
			}
			if n := web.Hits(path); n != 1 {
				t.Errorf("%s requested %d times", path, n)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d records, want %d: %v", len(got), len(want), slices.Sorted(maps.Keys(got)))
	}
	for _, path := range []string{"/f", "/g"} {
		if n := web.Hits(path); n != 0 {
			t.Errorf("%s, beyond the crawl, requested %d times", path, n)
		}
	}
	if n := elsewhere.Hits("/x"); n != 0 {
		t.Errorf("another host's page was requested %d times", n)
	}
	if n := web.Hits("/robots.txt"); n != 1 {
		t.Errorf("robots.txt requested %d times, want once for the run", n)
	}
	if sum.Records != len(want) || sum.Outstanding != 0 {
		t.Errorf("summary: %d records, %d outstanding; want %d, 0", sum.Records, sum.Outstanding, len(want))
	}
}

// A page nested deeper than the HTML parser allows (512 open elements) will
// not parse any better on a second attempt: it must be fetched once, and
// recorded with its error and what could be read of it.
//
// It fails until the parse-limit error kind (scrape.KindParseLimit, on
// another branch) is merged: until then such a page is bad_body, which is
// retried.
func TestRunParseLimitNotRetried(t *testing.T) {
	var deep strings.Builder
	// The table sends the page past the token scan to the tree builder,
	// which stops at the limit.
	deep.WriteString("<!doctype html><html><head><title>Deep</title></head><body><table><tr><td>")
	deep.WriteString(strings.Repeat("<div>", 600))
	deep.WriteString("bottom")
	deep.WriteString(strings.Repeat("</div>", 600))
	deep.WriteString("</td></tr></table></body></html>")
	web, srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, deep.String())
	}))
	h := newHarness(t, 2)
	if _, err := h.run([]string{srv.URL + "/deep"}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	recs := h.records()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	r := recs[0]
	t.Logf("record: %+v, error %+v", r, r.Error)
	if n := web.Hits("/deep"); n != 1 {
		t.Errorf("/deep requested %d times, want once: a page too deep to parse is no passing failure", n)
	}
	if r.Error == nil {
		t.Errorf("no error recorded for a page too deep to parse")
	}
	if r.Title != "Deep" {
		t.Errorf("title %q, want what was read before the limit (%q)", r.Title, "Deep")
	}
}

// With Progress on, status lines go to stderr while workers launch and the
// run logs through the same stderr, and the display reads the summary while
// the run's end fills in its last figures; the status file is left behind
// with them. Run under -race, it is the race detector's view of all three.
func TestRunProgress(t *testing.T) {
	const pages = 40
	ts := testsite.New(pages)
	_, srv := serve(t, ts)
	t.Cleanup(ts.Close)
	h := newHarness(t, 2, 2)
	h.cfg.Progress = true
	h.cfg.ProgressInterval = 5 * time.Millisecond
	// The run's own log goes to stderr, from the launches among others,
	// while the progress display takes it over.
	h.cfg.Logger, h.cfg.LogLevel = nil, "INFO"
	var lines []string
	for i := range pages {
		lines = append(lines, fmt.Sprintf("%s/slow/20/%d", srv.URL, i))
	}
	sum, err := h.run(lines)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := len(h.records()); n != pages || sum.Records != pages {
		t.Errorf("%d records, summary %d; want %d", n, sum.Records, pages)
	}
	stderr := h.stderr.String()
	for _, want := range []string{"done,", "worker ready", "node=localhost#2"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	st, _, err := ReadStatus(h.state)
	if err != nil {
		t.Fatal(err)
	}
	if st.Running || st.Records != pages || st.Total != pages || st.Nodes != 2 {
		t.Errorf("status file: running %v, %d of %d records, %d nodes; want done, %d of %d, 2", st.Running, st.Records, st.Total, st.Nodes, pages, pages)
	}
}
