package coordinator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// A robots.txt that never answers is the frontier's to give up on: once the
// run's dispatch returns, no fetch of it is left running.
func TestRobotsFetchesEndWithDispatch(t *testing.T) {
	hung := make(chan struct{})
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hung:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(site.Close)
	t.Cleanup(func() { close(hung) })

	f := newFrontier(frontierConfig{Window: 8, PerHost: 2, Robots: newRobotsFetcher("test", scrape.Config{}, 0, time.Millisecond, slog.New(slog.DiscardHandler))}, nil, queue.Run{ID: "TEST"}, nil, slog.New(slog.DiscardHandler))
	f.mu.Lock()
	for i, host := range []string{site.URL, strings.Replace(site.URL, "127.0.0.1", "localhost", 1)} {
		u, err := url.Parse(host + "/page")
		if err != nil {
			t.Fatal(err)
		}
		// Listed, or the guard would refuse the loopback robots.txt at once.
		f.enqueueLocked(scrape.Task{ID: uint64(i + 1), URL: u.String(), Attempt: 1, Listed: true}, u)
	}
	f.mu.Unlock()

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.dispatch(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for robotsFetches() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := robotsFetches(); n < 2 {
		t.Fatalf("%d robots.txt fetches under way, want 2", n)
	}
	if n := f.waitingOnRobots(); n != 2 {
		t.Errorf("%d hosts waiting on robots.txt, want 2", n)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dispatch: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("dispatch did not return once cancelled")
	}
	if n := robotsFetches(); n != 0 {
		t.Errorf("%d robots.txt fetches still running after dispatch returned", n)
	}
	if n := f.waitingOnRobots(); n != 0 {
		t.Errorf("%d hosts waiting on robots.txt after dispatch returned, want 0", n)
	}
}

// robotsFetches counts the goroutines fetching a robots.txt.
func robotsFetches() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "coordinator.(*robotsFetcher).fetch(")
}

// A robots.txt is fetched as a page is: a passing failure (5xx, 429, a
// refused connection, a timeout within the run's --timeout) is tried again
// Retries times after the run's backoff. A 5xx that lasts disallows every
// URL and says so; a robots.txt that recovers in time is obeyed; one that
// cannot be reached allows all, and counts its failures for the breaker.
func TestRobotsFetchRetries(t *testing.T) {
	const rules = "User-agent: *\nDisallow: /private\n"
	refusedPort := testsite.ClosedPort(t)
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	tests := []struct {
		name     string
		answers  []int // status per attempt; the last repeats; 0 hangs
		retries  int
		host     string // instead of the server's
		hits     int
		refusal  string
		allowed  bool   // "/page"
		private  bool   // "/private" allowed
		fails    int    // for the breaker
		failure  string // its prefix
		duration time.Duration
	}{
		{"503 lasts", []int{503}, 2, "", 3, "robots.txt answered 503: treated as disallow-all (RFC 9309); --ignore-robots overrides", false, false, 0, "", 0},
		{"503 twice, then rules", []int{503, 503, 200}, 2, "", 3, "", true, false, 0, "", 0},
		{"429, then rules", []int{429, 200}, 2, "", 2, "", true, false, 0, "", 0},
		{"500 with no retries", []int{500}, 0, "", 1, "robots.txt answered 500: treated as disallow-all (RFC 9309); --ignore-robots overrides", false, false, 0, "", 0},
		{"404 allows all at once", []int{404}, 2, "", 1, "", true, true, 0, "", 0},
		{"rules at once", []int{200}, 2, "", 1, "", true, false, 0, "", 0},
		{"refused", nil, 2, refusedPort, 0, "", true, true, 3, "connect: ", 0},
		{"hangs past the run's timeout", []int{0}, 1, "", 2, "", true, true, 2, "timeout: ", 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			hits := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				status := tt.answers[min(hits, len(tt.answers)-1)]
				hits++
				mu.Unlock()
				switch status {
				case 0:
					select {
					case <-hang:
					case <-r.Context().Done():
					}
				case 200:
					io.WriteString(w, rules)
				default:
					w.WriteHeader(status)
				}
			}))
			t.Cleanup(srv.Close)
			host := strings.TrimPrefix(srv.URL, "http://")
			if tt.host != "" {
				host = tt.host
			}
			r := newRobotsFetcher("test", scrape.Config{Timeout: 300 * time.Millisecond}, tt.retries, time.Millisecond, slog.New(slog.DiscardHandler))
			start := time.Now()
			got := r.fetch(t.Context(), "http", host, true)
			took := time.Since(start)
			srv.Close()
			if hits != tt.hits {
				t.Errorf("robots.txt requested %d times, want %d", hits, tt.hits)
			}
			if got.refusal != tt.refusal {
				t.Errorf("refusal %q, want %q", got.refusal, tt.refusal)
			}
			if a := got.data.TestAgent("/page", "test"); a != tt.allowed {
				t.Errorf("/page allowed: %v, want %v", a, tt.allowed)
			}
			if a := got.data.TestAgent("/private", "test"); a != tt.private {
				t.Errorf("/private allowed: %v, want %v", a, tt.private)
			}
			if got.fails != tt.fails || !strings.HasPrefix(got.failure, tt.failure) || (tt.fails > 0) != (got.failure != "") {
				t.Errorf("failures to reach the host: %d, %q; want %d, %q...", got.fails, got.failure, tt.fails, tt.failure)
			}
			// Each attempt given the run's timeout of 300ms, not robotsTimeout.
			if tt.duration > 0 && took > tt.duration {
				t.Errorf("took %s, want under %s", took, tt.duration)
			}
		})
	}
}

// A robots.txt that could not be reached, its retries spent, has failed the
// host as often as pages would have: the breaker opens, and the first page
// goes at once as its probe while the others wait.
func TestRobotsFailuresOpenTheBreaker(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	f, _ := newTestFrontier(t, frontierConfig{Window: 64, PerHost: 8, Slots: 8, Retries: 2, Backoff: time.Millisecond, HostFailures: 3,
		Robots: newRobotsFetcher("test", scrape.Config{}, 2, time.Millisecond, log)})
	t.Cleanup(f.stopRobots)
	host := testsite.ClosedPort(t)
	var lines []string
	for i := range 10 {
		lines = append(lines, fmt.Sprintf("http://%s/%d", host, i))
	}
	if err := f.feed(t.Context(), strings.NewReader(strings.Join(lines, "\n"))); err != nil {
		t.Fatal(err)
	}
	var released []*entry
	waitFor(t, 5*time.Second, "robots.txt to be given up on", func() bool {
		batch, denied, _ := f.pick(time.Now())
		if len(denied) > 0 {
			t.Fatalf("recorded %v", keys(denied))
		}
		released = append(released, batch...)
		return len(released) > 0
	})
	time.Sleep(20 * time.Millisecond)
	batch, _, _ := f.pick(time.Now())
	released = append(released, batch...)
	f.mu.Lock()
	b := f.hosts[host].brk
	f.mu.Unlock()
	if len(released) != 1 || b.state != hostProbing || b.fails != 3 || !strings.HasPrefix(b.last, "robots.txt: connect: ") {
		t.Errorf("released %v, breaker %s after %d failures (%q); want one probe after robots.txt's 3", keys(released), stateName(b.state), b.fails, b.last)
	}
}

func TestStatusLineRobotsWaiting(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	for n, want := range map[int]string{0: "ETA ?, 0 errors", 1: "ETA ?, 1 host waiting on robots.txt, 0 errors", 3: "ETA ?, 3 hosts waiting on robots.txt, 0 errors [a 2]"} {
		st := Status{Summary: Summary{Records: 2, OK: 2}, Started: t0, Updated: t0, Running: true, Total: 10, TotalKnown: true, RobotsWaiting: n}
		if n == 3 {
			st.PerNode = map[string]int{"a": 2}
		}
		if line := st.Line(); !strings.HasSuffix(line, want) {
			t.Errorf("%d waiting: %q, want it to end %q", n, line, want)
		}
	}
}
