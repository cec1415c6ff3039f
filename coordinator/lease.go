package coordinator

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// leases hand out start times for requests to one host, the host's own
// delay apart across the whole cluster: --delay, its robots.txt Crawl-delay
// when longer, or the spacing 429s and 503s led to (frontier.hostDelay).
// Start times come from the coordinator's clock alone, so nodes whose clocks
// disagree still keep the spacing, and a task that waited in the queue cannot
// start early with another.
//
// A lease keeps the least gap, not the jitter: the frontier releases a spaced
// host's tasks delay plus up to half of it again apart (hostRate.release), so
// that requests do not arrive like clockwork (the jitter Scrapy users know),
// and a lease only holds back a task that would start sooner than delay after
// the one before it.
type leases struct {
	// delayOf is the host's delay now; false for a host the run has no
	// task of, whose requests are not booked.
	delayOf func(host string) (time.Duration, bool)

	mu   sync.Mutex
	last map[string]time.Time // the latest start granted, by host
}

func newLeases(delayOf func(host string) (time.Duration, bool)) *leases {
	return &leases{delayOf: delayOf, last: map[string]time.Time{}}
}

// reserve returns when a request to host, whose delay is delay now, may
// start, and books it: no sooner than delay after the latest start granted
// to host. A host whose delay changed is spaced by the new one from the next
// request on.
func (l *leases) reserve(host string, delay time.Duration, now time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := now
	if last, ok := l.last[host]; ok {
		start = later(start, last.Add(delay))
	}
	l.last[host] = start
	return start
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// serve answers lease requests: each reply is sent at the granted time. A
// request for a host the run has no task of is answered at once, unbooked,
// so that no worker can grow the bookings with names of its own.
func (l *leases) serve(nc *nats.Conn, subject string) (*nats.Subscription, error) {
	return nc.Subscribe(subject, func(m *nats.Msg) {
		host := string(m.Data)
		delay, known := l.delayOf(host)
		if !known {
			_ = m.Respond(nil)
			return
		}
		wait := time.Until(l.reserve(host, delay, time.Now()))
		if wait <= 0 {
			_ = m.Respond(nil)
			return
		}
		time.AfterFunc(wait, func() { _ = m.Respond(nil) })
	})
}
