package coordinator

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

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

	f := newFrontier(frontierConfig{Window: 8, PerHost: 2, Robots: newRobotsFetcher("test", scrape.Config{}, slog.New(slog.DiscardHandler))}, nil, queue.Run{ID: "TEST"}, nil, slog.New(slog.DiscardHandler))
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
}

// robotsFetches counts the goroutines fetching a robots.txt.
func robotsFetches() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "coordinator.(*robotsFetcher).fetch(")
}
