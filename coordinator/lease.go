package coordinator

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// leases hand out start times for requests to one host, --delay apart
// across the whole cluster. Start times come from the coordinator's clock
// alone, so nodes whose clocks disagree still keep the spacing, and a task
// that waited in the queue cannot start early with another.
type leases struct {
	delay time.Duration

	mu   sync.Mutex
	next map[string]time.Time
}

// reserve returns when a request to host may start, and books the slot.
// Each gap is delay plus up to half of it again, so that requests do not
// arrive like clockwork (the jitter Scrapy users know).
func (l *leases) reserve(host string, now time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := now
	if n := l.next[host]; n.After(now) {
		start = n
	}
	l.next[host] = start.Add(l.delay + rand.N(l.delay/2+1))
	return start
}

// serve answers lease requests: each reply is sent at the granted time.
func (l *leases) serve(nc *nats.Conn, subject string) (*nats.Subscription, error) {
	return nc.Subscribe(subject, func(m *nats.Msg) {
		wait := time.Until(l.reserve(string(m.Data), time.Now()))
		if wait <= 0 {
			_ = m.Respond(nil)
			return
		}
		time.AfterFunc(wait, func() { _ = m.Respond(nil) })
	})
}
