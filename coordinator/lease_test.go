package coordinator

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testqueue"
)

// Leases space the starts of one host's requests by that host's own delay,
// as it is when each is asked for; hosts do not wait for each other.
func TestLeasesSpaceStartsPerHost(t *testing.T) {
	const ms = time.Millisecond
	type ask struct {
		host      string
		delay     time.Duration // the host's delay at the request
		at, start time.Duration // since t0: asked, and the start granted
	}
	tests := []struct {
		name string
		asks []ask
	}{
		{"one host: its delay apart", []ask{{"a", 100 * ms, 0, 0}, {"a", 100 * ms, 0, 100 * ms}, {"a", 100 * ms, 10 * ms, 200 * ms}}},
		{"each host its own delay", []ask{
			{"a", 100 * ms, 0, 0}, {"b", 2 * time.Second, 0, 0}, {"c", 0, 0, 0},
			{"a", 100 * ms, 0, 100 * ms}, {"b", 2 * time.Second, 0, 2 * time.Second}, {"c", 0, 0, 0}, {"c", 0, 0, 0},
		}},
		{"after the gap: at once", []ask{{"a", 100 * ms, 0, 0}, {"a", 100 * ms, 500 * ms, 500 * ms}}},
		{"a longer delay spaces the next request", []ask{{"a", 100 * ms, 0, 0}, {"a", 100 * ms, 0, 100 * ms}, {"a", time.Second, 0, 1100 * ms}}},
		{"a delay gone: no sooner than the last start booked", []ask{{"a", time.Second, 0, 0}, {"a", time.Second, 0, time.Second}, {"a", 0, 0, time.Second}, {"a", 0, 1500 * ms, 1500 * ms}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLeases(nil)
			t0 := time.Unix(1_000_000, 0)
			for i, a := range tt.asks {
				if got := l.reserve(a.host, a.delay, t0.Add(a.at)).Sub(t0); got != a.start {
					t.Errorf("request %d (%s, delay %s, at %s): starts at %s, want %s", i+1, a.host, a.delay, a.at, got, a.start)
				}
			}
		})
	}
}

// The lease service, on a real NATS server, answers each request at its
// host's start time, with the host's own delay as the frontier has it now;
// a host the run has no task of is answered at once and not booked.
func TestLeasesServeEachHostItsDelay(t *testing.T) {
	srv := testqueue.Start(t)
	nc := testqueue.Connect(t, srv).Conn()
	delays := map[string]time.Duration{"a": 150 * time.Millisecond, "b": 0}
	l := newLeases(func(host string) (time.Duration, bool) {
		d, ok := delays[host]
		return d, ok
	})
	sub, err := l.serve(nc, "lease")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })

	// Three requests for each host at once: a's are answered 150 ms
	// apart, b's and unknown's at once.
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered := map[string][]time.Duration{}
	for _, host := range []string{"a", "b", "unknown"} {
		for range 3 {
			wg.Go(func() {
				if _, err := nc.Request("lease", []byte(host), 5*time.Second); err != nil {
					t.Errorf("lease for %s: %v", host, err)
					return
				}
				mu.Lock()
				answered[host] = append(answered[host], time.Since(start))
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	for host, after := range answered {
		slices.Sort(after)
		t.Logf("%s answered after %v", host, after)
		switch host {
		case "a":
			// Timed where the answers are read, so a reader descheduled
			// for a moment shortens one gap: the two together still span
			// both delays.
			if after[1]-after[0] < 110*time.Millisecond || after[2]-after[1] < 110*time.Millisecond || after[2]-after[0] < 290*time.Millisecond {
				t.Errorf("a's leases answered after %v: want them 150ms apart", after)
			}
		default:
			if after[2] > 140*time.Millisecond {
				t.Errorf("%s's leases answered after %v: want them at once, not a delay of a's apart", host, after)
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, booked := l.last["unknown"]; booked || len(l.last) != 2 {
		t.Errorf("booked %v, want a and b alone", l.last)
	}
}
