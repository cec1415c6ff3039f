package coordinator

// In-process runs of the politeness that reacts (rate.go): a robots.txt
// Crawl-delay spaces a host's requests across the cluster, capped by
// MaxCrawlDelay, and a host that answers 429 is slowed down and then sped up
// again.

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/queue"
)

// crawlDelaySite serves robots.txt with robots, and a small page on every
// other path.
func crawlDelaySite(t *testing.T, robots string) (*site, string) {
	web, srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			io.WriteString(w, robots)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<title>page</title>")
	}))
	return web, srv.URL
}

// arrivals merges the times the site saw requests for paths, in order.
func arrivals(web *site, paths []string) []time.Time {
	var all []time.Time
	for _, p := range paths {
		all = append(all, web.Arrived(p)...)
	}
	slices.SortFunc(all, func(a, b time.Time) int { return a.Compare(b) })
	return all
}

func hostKey(t *testing.T, base string) string {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return queue.HostKey(u)
}

// checkPages checks that every page has one record, a good one, and was
// requested once; it returns the nodes that recorded them.
func checkPages(t *testing.T, h *harness, web *site, base string, paths []string) map[string]int {
	t.Helper()
	got := byURL(t, h.records())
	nodes := map[string]int{}
	for _, p := range paths {
		r, ok := got[base+p]
		switch {
		case !ok:
			t.Errorf("%s has no record", p)
		case r.Error != nil || r.Status != 200:
			t.Errorf("%s: status %d, error %+v", p, r.Status, r.Error)
		}
		nodes[r.Node]++
		if n := web.Hits(p); n != 1 {
			t.Errorf("%s requested %d times, want once", p, n)
		}
	}
	if len(got) != len(paths) {
		t.Errorf("%d records for %d pages", len(got), len(paths))
	}
	return nodes
}

// A Crawl-delay in robots.txt spaces the starts of the host's requests by
// that much across both nodes, with no --delay given, and the summary says
// why the host went slower.
func TestRunCrawlDelayAcrossNodes(t *testing.T) {
	const pages, crawlDelay = 10, 200 * time.Millisecond
	web, base := crawlDelaySite(t, "User-agent: *\nCrawl-delay: 0.2\n")
	h := newHarness(t, 4, 4)
	h.cfg.IgnoreRobots = false
	var lines, paths []string
	for i := range pages {
		paths = append(paths, fmt.Sprintf("/p/%d", i))
		lines = append(lines, base+paths[i])
	}
	start := time.Now()
	sum, err := h.run(lines)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	took := time.Since(start)
	nodes := checkPages(t, h, web, base, paths)
	if len(nodes) != 2 {
		t.Errorf("pages recorded by %v, want both nodes: the spacing holds across the cluster", nodes)
	}
	for _, p := range testsite.SpacingProblems(arrivals(web, paths), crawlDelay) {
		t.Error(p)
	}
	if min := time.Duration(pages-1) * crawlDelay; took < min {
		t.Errorf("run took %s, less than %d Crawl-delays (%s)", took, pages-1, min)
	}
	if why := sum.Slowed[hostKey(t, base)]; why != "Crawl-delay 200ms" || sum.SlowedHosts != 1 {
		t.Errorf("summary: slowed %v (%d hosts), want the host's Crawl-delay 200ms", sum.Slowed, sum.SlowedHosts)
	}
}

// A Crawl-delay longer than MaxCrawlDelay spaces the host's requests by
// MaxCrawlDelay: 30 s asked for, 150 ms kept.
func TestRunCrawlDelayCapped(t *testing.T) {
	const pages, most = 8, 150 * time.Millisecond
	web, base := crawlDelaySite(t, "User-agent: *\nCrawl-delay: 30\n")
	h := newHarness(t, 4, 4)
	h.cfg.IgnoreRobots, h.cfg.MaxCrawlDelay = false, most
	var lines, paths []string
	for i := range pages {
		paths = append(paths, fmt.Sprintf("/p/%d", i))
		lines = append(lines, base+paths[i])
	}
	sum, err := h.run(lines)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkPages(t, h, web, base, paths)
	starts := arrivals(web, paths)
	for _, p := range testsite.SpacingProblems(starts, most) {
		t.Error(p)
	}
	for i := 1; i < len(starts); i++ {
		// At most the cap plus half of it as jitter, and some slack for
		// a loaded machine: nowhere near the 30 s asked for.
		if gap := starts[i].Sub(starts[i-1]); gap > time.Second {
			t.Errorf("requests %d and %d started %s apart, want %s to 1.5 times it", i, i+1, gap, most)
		}
	}
	want := "Crawl-delay 30s, capped to 150ms by --max-crawl-delay"
	if why := sum.Slowed[hostKey(t, base)]; why != want {
		t.Errorf("summary: slowed %v, want %q", sum.Slowed, want)
	}
}

// busySite answers 429 at once to a request that finds more than busyAbove
// others in flight, and serves the rest in serveTime. It notes how many
// requests each found in flight, itself included.
type busySite struct {
	busyAbove int
	serveTime time.Duration

	mu       sync.Mutex
	inflight int
	seen     []arrival
}

type arrival struct {
	path     string
	at       time.Time
	inflight int
	status   int
}

func (b *busySite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.inflight++
	a := arrival{path: r.URL.Path, at: time.Now(), inflight: b.inflight, status: http.StatusOK}
	if a.inflight > b.busyAbove {
		a.status = http.StatusTooManyRequests
	}
	b.seen = append(b.seen, a)
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.inflight--
		b.mu.Unlock()
	}()
	if a.status != http.StatusOK {
		w.WriteHeader(a.status)
		return
	}
	time.Sleep(b.serveTime)
	w.Header().Set("Content-Type", "text/html")
	io.WriteString(w, "<title>page</title>")
}

func (b *busySite) arrivals() []arrival {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.seen)
}

// A host that answers 429 when more than 3 requests are in flight is slowed
// down at once: after its first 429s, requests reach it one or two at a time,
// not the cluster's 8. Its successes then speed it up again, so that later
// requests reach it several at a time once more. Every page is still fetched
// and recorded exactly once, and the summary says what happened.
func TestRunSlowsDownOn429AndRecovers(t *testing.T) {
	const pages = 20
	busy := &busySite{busyAbove: 3, serveTime: 40 * time.Millisecond}
	web, srv := serve(t, busy)
	h := newHarness(t, 4, 4) // --per-host 8: the cluster's 8 slots
	h.cfg.Retries = 5
	var lines, paths []string
	for i := range pages {
		paths = append(paths, fmt.Sprintf("/p/%d", i))
		lines = append(lines, srv.URL+paths[i])
	}
	sum, err := h.run(lines)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := byURL(t, h.records())
	for _, p := range paths {
		if r, ok := got[srv.URL+p]; !ok || r.Error != nil || r.Status != 200 {
			t.Errorf("%s: %+v (recorded: %v), want the page", p, r, ok)
		}
	}
	if len(got) != pages || sum.OK != pages {
		t.Errorf("%d records, %d ok; want %d", len(got), sum.OK, pages)
	}

	seen := busy.arrivals()
	served, limited := map[string]int{}, 0
	first429 := -1
	for i, a := range seen {
		if a.status == http.StatusTooManyRequests {
			limited++
			if first429 < 0 {
				first429 = i
			}
		} else {
			served[a.path]++
		}
	}
	for _, p := range paths {
		if served[p] != 1 {
			t.Errorf("%s served %d times (and answered 429 %d times), want once", p, served[p], web.Hits(p)-served[p])
		}
	}
	t.Logf("%d requests, %d answered 429; in flight at each arrival: %v", len(seen), limited, inflights(seen))
	if first429 < 0 {
		t.Fatal("the site never answered 429: the test did not test anything")
	}
	// The first burst is 8 at once. From a moment after the first 429
	// (once the burst's pages are served), for the next second and a half,
	// before recoverAfter successes at slowFloor apart can have sped the
	// host up: one request at a time, two at most.
	t429 := seen[first429].at
	slowFrom, slowTo := t429.Add(100*time.Millisecond), t429.Add(1500*time.Millisecond)
	slowPeak, slowN, laterPeak := 0, 0, 0
	for _, a := range seen {
		switch {
		case a.at.Before(slowFrom):
		case a.at.Before(slowTo):
			slowPeak = max(slowPeak, a.inflight)
			slowN++
		default:
			laterPeak = max(laterPeak, a.inflight)
		}
	}
	if slowN == 0 || slowPeak > 2 {
		t.Errorf("after the first 429s: %d requests, up to %d in flight at once; want some, 2 at most", slowN, slowPeak)
	}
	if laterPeak < 3 {
		t.Errorf("later requests reached at most %d in flight at once: the host was never sped up again", laterPeak)
	}
	// Each 429 was retried.
	if sum.Retries != limited {
		t.Errorf("%d retries for %d 429s", sum.Retries, limited)
	}
	why := sum.Slowed[hostKey(t, srv.URL)]
	if !strings.HasPrefix(why, fmt.Sprintf("429 x%d: down to ", limited)) || sum.SlowedHosts != 1 {
		t.Errorf("summary: slowed %v (%d hosts), want the host's %d 429s", sum.Slowed, sum.SlowedHosts, limited)
	}
}

func inflights(seen []arrival) []int {
	var n []int
	for _, a := range seen {
		n = append(n, a.inflight)
	}
	return n
}
