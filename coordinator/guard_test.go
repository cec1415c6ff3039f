package coordinator

import (
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// loopbackSite serves a page and a robots.txt that disallows everything on
// ip, one of the loopback addresses (all of 127.0.0.0/8 on Linux), and
// counts the requests it gets.
func loopbackSite(t *testing.T, ip string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	hits := new(atomic.Int32)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/robots.txt" {
			w.Write([]byte("User-agent: *\nDisallow: /\n"))
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<title>page</title>"))
	}))
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("listen on %s: %v", ip, err)
	}
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, hits
}

// queuedTasks are the tasks in the frontier's host queues, by URL.
func queuedTasks(f *frontier) map[string]scrape.Task {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]scrape.Task{}
	for _, h := range f.hosts {
		for _, e := range h.queue {
			out[e.task.URL] = e.task
		}
	}
	return out
}

// The input's hosts are the user's to fetch, private or not: its lines'
// tasks are listed, and so are crawled pages on those hosts (host and
// port, as politeness counts them), while a link to any other host is not.
// Fetched as a worker fetches them, the listed pages on loopback are read
// and the other loopback host never hears of its page.
func TestTasksListedAsTheInputListsTheirHosts(t *testing.T) {
	a, aHits := loopbackSite(t, "127.0.0.1")
	other, otherHits := loopbackSite(t, "127.0.0.2")
	otherPort, otherPortHits := loopbackSite(t, "127.0.0.1")
	hits := map[*httptest.Server]*atomic.Int32{a: aHits, other: otherHits, otherPort: otherPortHits}

	tests := []struct {
		name   string
		crawl  bool
		input  []string
		links  []string        // found on the first input line's page
		listed map[string]bool // of every task queued
	}{
		{"input lines", false,
			[]string{a.URL + "/1", other.URL + "/2"}, nil,
			map[string]bool{a.URL + "/1": true, other.URL + "/2": true}},
		{"crawled pages", true,
			[]string{a.URL + "/1"}, []string{a.URL + "/2", other.URL + "/3", otherPort.URL + "/4"},
			map[string]bool{a.URL + "/1": true, a.URL + "/2": true, other.URL + "/3": false, otherPort.URL + "/4": false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := frontierConfig{Window: 8, PerHost: 2}
			if tt.crawl {
				cfg.Crawl = newCrawlScope(2, false, nil, 0)
			}
			f := newFrontier(cfg, nil, queue.Run{ID: "TEST"}, &sink{journal: &journal{}}, slog.New(slog.DiscardHandler))
			if err := f.feed(t.Context(), strings.NewReader(strings.Join(tt.input, "\n"))); err != nil {
				t.Fatal(err)
			}
			if tt.links != nil {
				f.discover(queuedTasks(f)[tt.input[0]], tt.links)
			}
			tasks := queuedTasks(f)
			if got, want := slices.Sorted(maps.Keys(tasks)), slices.Sorted(maps.Keys(tt.listed)); !slices.Equal(got, want) {
				t.Fatalf("tasks %q, want %q", got, want)
			}

			// Fetched as a worker fetches them.
			fetcher := scrape.NewFetcher(scrape.Config{})
			defer fetcher.Close()
			for _, n := range hits {
				n.Store(0)
			}
			for url, want := range tt.listed {
				task := tasks[url]
				if task.Listed != want {
					t.Errorf("%s: Listed = %v, want %v", url, task.Listed, want)
				}
				ctx := t.Context()
				if task.Listed {
					ctx = scrape.Listed(ctx)
				}
				res := fetcher.Fetch(ctx, task.URL)
				switch {
				case want && res.Error != nil:
					t.Errorf("%s: %v, want the page", url, res.Error)
				case !want && (res.Error == nil || res.Error.Kind != scrape.KindBlockedAddress):
					t.Errorf("%s: error %v, want %s", url, res.Error, scrape.KindBlockedAddress)
				}
			}
			for srv, n := range hits {
				want := 0
				for url, listed := range tt.listed {
					if listed && strings.HasPrefix(url, srv.URL+"/") {
						want++
					}
				}
				if got := int(n.Load()); got != want {
					t.Errorf("%s got %d requests, want %d", srv.URL, got, want)
				}
			}
		})
	}
}

// A robots.txt goes through the guard like a page. A listed host's is read
// and obeyed; one on a private address the input does not list is never
// requested, and counts as unavailable (everything allowed) rather than
// disallowing the host's pages: their own fetches then say blocked_address.
// The run's --allow-private opens it like a page.
func TestRobotsTxtThroughTheGuard(t *testing.T) {
	listed, listedHits := loopbackSite(t, "127.0.0.1")
	other, otherHits := loopbackSite(t, "127.0.0.2")
	listedPage, otherPage := listed.URL+"/page", other.URL+"/page"

	tests := []struct {
		name                  string
		fetch                 scrape.Config
		denied, released      []string
		listedReqs, otherReqs int32
	}{
		{"unlisted host refused", scrape.Config{}, []string{listedPage}, []string{otherPage}, 1, 0},
		{"unlisted host allowed", scrape.Config{AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
			[]string{listedPage, otherPage}, nil, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			listedHits.Store(0)
			otherHits.Store(0)
			log := slog.New(slog.DiscardHandler)
			cfg := frontierConfig{Window: 8, PerHost: 2, Robots: newRobotsFetcher("test", tt.fetch, 0, time.Millisecond, log), Crawl: newCrawlScope(2, false, nil, 0)}
			f := newFrontier(cfg, nil, queue.Run{ID: "TEST"}, &sink{journal: &journal{}}, log)
			t.Cleanup(f.stopRobots)
			if err := f.feed(t.Context(), strings.NewReader(listedPage)); err != nil {
				t.Fatal(err)
			}
			f.discover(queuedTasks(f)[listedPage], []string{otherPage})

			var denied, released []string
			for deadline := time.Now().Add(5 * time.Second); len(denied)+len(released) < 2 && time.Now().Before(deadline); {
				batch, den, _ := f.pick(time.Now())
				for _, e := range batch {
					released = append(released, e.task.URL)
				}
				for _, e := range den {
					denied = append(denied, e.task.URL)
				}
				time.Sleep(5 * time.Millisecond)
			}
			slices.Sort(denied)
			slices.Sort(released)
			if !slices.Equal(denied, tt.denied) || !slices.Equal(released, tt.released) {
				t.Errorf("denied %q, released %q; want %q and %q", denied, released, tt.denied, tt.released)
			}
			if n := listedHits.Load(); n != tt.listedReqs {
				t.Errorf("the listed host got %d requests, want %d", n, tt.listedReqs)
			}
			if n := otherHits.Load(); n != tt.otherReqs {
				t.Errorf("the unlisted host got %d requests, want %d", n, tt.otherReqs)
			}
		})
	}
}
