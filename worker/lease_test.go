package worker

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// A task whose host is spaced (Task.Delay) waits for the coordinator's start
// lease before its request; a task of a host without spacing asks for none,
// even with the lease service there, and starts at once.
func TestWorkerAsksALeaseOnlyForSpacedHosts(t *testing.T) {
	var mu sync.Mutex
	fetched := map[string]time.Time{}
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fetched[r.Host] = time.Now()
		mu.Unlock()
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<title>page</title>")
	})
	spaced, plain := httptest.NewServer(page), httptest.NewServer(page)
	t.Cleanup(spaced.Close)
	t.Cleanup(plain.Close)
	q := startQueue(t, queue.Job{Fetch: scrape.Config{Timeout: 5 * time.Second}, AckWait: 5 * time.Second, MaxDeliver: 3})

	const hold = 300 * time.Millisecond
	type ask struct {
		host string
		at   time.Time
	}
	var asks []ask
	sub, err := q.js.Conn().Subscribe(q.run.LeaseSubject(), func(m *nats.Msg) {
		mu.Lock()
		asks = append(asks, ask{string(m.Data), time.Now()})
		mu.Unlock()
		time.AfterFunc(hold, func() { _ = m.Respond(nil) })
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })

	q.publish(t,
		scrape.Task{ID: 1, URL: spaced.URL + "/", Attempt: 1, Listed: true, Delay: 200 * time.Millisecond},
		scrape.Task{ID: 2, URL: plain.URL + "/", Attempt: 1, Listed: true})
	startWorker(t, q, 2, nil)
	for id, r := range q.collect(t, 2) {
		if r.Error != nil || r.Status != 200 {
			t.Errorf("task %d: %+v", id, r)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	spacedHost, plainHost := hostOf(t, spaced.URL), hostOf(t, plain.URL)
	if len(asks) != 1 || asks[0].host != spacedHost {
		t.Fatalf("leases asked %v, want one, for %s", asks, spacedHost)
	}
	if wait := fetched[spacedHost].Sub(asks[0].at); wait < hold {
		t.Errorf("the spaced host was requested %s after its lease was asked, before the lease came (%s)", wait, hold)
	}
	if d := fetched[spacedHost].Sub(fetched[plainHost]); d < hold/2 {
		t.Errorf("the plain host was requested only %s before the spaced one: it waited for a lease too", d)
	}
}

func hostOf(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
