package coordinator

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// A host's pace is how many of its requests may be in flight at once and how
// far apart they start. It begins at --per-host and --delay, or at the
// host's robots.txt Crawl-delay for our user agent when that is longer
// (capped by --max-crawl-delay), and then follows the host's answers,
// additive increase and multiplicative decrease, as TCP follows a congested
// link:
//
//   - A 429 or 503 halves the host's rate: its limit in flight halves (1 at
//     least) and its spacing doubles, to slowFloor at least and slowCap at
//     most, and never below the host's own delay. Only an answer to a
//     request released at the pace in force lowers it: the rest of a burst
//     sent at the old pace says nothing of the new one.
//   - Every recoverAfter successes (answers that need no retry: 2xx, 3xx,
//     4xx but 408 and 429) then raise a lowered pace one step: one more in
//     flight, up to --per-host, and the spacing halved; a spacing halved below
//     slowFloor is the host's own delay again.
//   - Timeouts, connection errors and the other 5xx do neither: they say
//     more about a host that is down than about one that is busy.
//
// With --per-host 8 and no --delay, a 429 takes a host to 4 in flight, 250 ms
// apart; a second to 2, 500 ms; a third to 1, 1 s; then 1 in flight, 2 s,
// 4 s, 8 s, 16 s, 30 s. From 1 and 1 s, 30 successes bring it back to 4 in
// flight and no spacing (1 s, 500 ms, 250 ms, none), 70 to all 8.
//
// The frontier applies the limit when it releases tasks (pick), and the
// spacing twice: it releases a spaced host's tasks its delay plus up to half
// of it again apart, and each such task carries the delay, so its worker asks
// for a start lease (lease.go), which keeps the starts at least the delay
// apart even for tasks that waited in the queue together.
const (
	slowFloor    = 250 * time.Millisecond
	slowCap      = 30 * time.Second
	recoverAfter = 10
	// maxSlowedHosts bounds the hosts the summary names.
	maxSlowedHosts = 10
)

// hostRate is one host's pace, and what the summary says of it.
type hostRate struct {
	limit int           // requests in flight allowed now: PerHost, lowered by 429 and 503
	delay time.Duration // least time between two starts now; 0: none
	base  time.Duration // the delay the host comes back to: --delay, or its Crawl-delay
	next  time.Time     // the host's next task is not released before this
	cut   time.Time     // when the pace was last lowered
	good  int           // successes since the pace last changed

	// crawl is the Crawl-delay robots.txt asks for, when it set base, as
	// read (negative: too large to read); base is what was kept of it.
	crawl     time.Duration
	overloads map[int]int   // 429 and 503 answers, by status
	low       int           // the lowest limit
	slowest   time.Duration // the longest delay
}

func newHostRate(perHost int, delay time.Duration) hostRate {
	return hostRate{limit: perHost, delay: delay, base: delay, low: perHost, slowest: delay}
}

// crawlDelay makes d, the host's robots.txt Crawl-delay for our agent, its
// own delay, when longer than the one it has. A d above most, or negative
// (robotstxt's conversion of a value too large for a Duration), is most. It
// reports whether the delay changed.
func (r *hostRate) crawlDelay(d, most time.Duration) bool {
	if d == 0 {
		return false
	}
	kept := d
	if d < 0 || d > most {
		kept = most
	}
	if kept <= r.base {
		return false
	}
	r.crawl, r.base = d, kept
	r.delay = max(r.delay, kept)
	r.slowest = max(r.slowest, r.delay)
	return true
}

// release accounts for a task of the host released at now: the next waits
// the delay plus up to half of it again. It returns the delay the task
// carries.
func (r *hostRate) release(now time.Time) time.Duration {
	if r.delay > 0 {
		r.next = now.Add(r.delay + rand.N(r.delay/2+1))
	}
	return r.delay
}

// paceChange is what an answer did to a host's pace.
type paceChange int

const (
	paceKept paceChange = iota
	paceLowered
	paceRaised
)

// overloaded says an answer asks us to slow down: a 429 or a 503.
func overloaded(m queue.ResultMeta) bool {
	return m.Kind == scrape.KindHTTPStatus && (m.Status == 429 || m.Status == 503)
}

// answer moves the pace on m, the answer to a request released at released,
// at now; perHost is the most in flight.
func (r *hostRate) answer(m queue.ResultMeta, released, now time.Time, perHost int) paceChange {
	switch {
	case overloaded(m):
		if r.overloads == nil {
			r.overloads = map[int]int{}
		}
		r.overloads[m.Status]++
		if released.Before(r.cut) {
			return paceKept // sent before the last cut: already answered
		}
		r.cut, r.good = now, 0
		r.limit = max(1, r.limit/2)
		r.delay = max(r.base, min(max(2*r.delay, slowFloor), slowCap))
		// The next release waits the new spacing from now, not from the
		// last release, which went at the old one.
		r.next = later(r.next, now.Add(r.delay))
		r.low, r.slowest = min(r.low, r.limit), max(r.slowest, r.delay)
		return paceLowered
	case m.Status > 0 && !retryable(m):
		if r.limit >= perHost && r.delay <= r.base {
			return paceKept // at full pace
		}
		if r.good++; r.good < recoverAfter {
			return paceKept
		}
		r.good = 0
		r.limit = min(perHost, r.limit+1)
		if r.delay /= 2; r.delay < slowFloor {
			r.delay = 0
		}
		r.delay = max(r.delay, r.base)
		return paceRaised
	}
	return paceKept
}

// slowed says why the host went slower than perHost and delay allow, if it
// did.
func (r *hostRate) slowed(perHost int) (string, bool) {
	var parts []string
	switch {
	case r.crawl == 0:
	case r.crawl < 0:
		parts = append(parts, fmt.Sprintf("Crawl-delay too large to read, capped to %s by --max-crawl-delay", r.base))
	case r.crawl > r.base:
		parts = append(parts, fmt.Sprintf("Crawl-delay %s, capped to %s by --max-crawl-delay", r.crawl, r.base))
	default:
		parts = append(parts, fmt.Sprintf("Crawl-delay %s", r.crawl))
	}
	if len(r.overloads) > 0 {
		var counts []string
		for _, status := range slices.Sorted(maps.Keys(r.overloads)) {
			counts = append(counts, fmt.Sprintf("%d x%d", status, r.overloads[status]))
		}
		s := fmt.Sprintf("%s: down to %d in flight, %s apart", strings.Join(counts, ", "), r.low, r.slowest)
		if r.limit >= perHost && r.delay <= r.base {
			s += "; back to full pace by the end"
		} else {
			s += fmt.Sprintf("; %d in flight, %s apart at the end", r.limit, r.delay)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; "), len(parts) > 0
}

// adaptLocked moves e's host's pace on its answer m, and logs the change.
func (f *frontier) adaptLocked(e *entry, m queue.ResultMeta, now time.Time) {
	r := &e.host.rate
	switch r.answer(m, e.released, now, f.cfg.PerHost) {
	case paceLowered:
		f.log.Info("host asks to slow down", "host", e.host.key, "status", m.Status, "in_flight", r.limit, "apart", r.delay)
	case paceRaised:
		f.log.Debug("host's pace raised", "host", e.host.key, "in_flight", r.limit, "apart", r.delay)
	}
}

// crawlDelayLocked applies h's robots.txt Crawl-delay d.
func (f *frontier) crawlDelayLocked(h *hostState, d time.Duration) {
	if h.rate.crawlDelay(d, cmp.Or(f.cfg.MaxCrawlDelay, DefaultMaxCrawlDelay)) {
		f.log.Info("robots.txt asks for a Crawl-delay", "host", h.key, "crawl_delay", d, "apart", h.rate.delay)
	}
}

// hostDelay is the delay of host now, for its start leases; false for a
// host the run has no task of.
func (f *frontier) hostDelay(host string) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.hosts[host]
	if h == nil {
		return 0, false
	}
	return h.rate.delay, true
}

// slowed names the hosts the run went slower on than --per-host and --delay
// allow, and why: the maxSlowedHosts most slowed (the most 429s and 503s
// first, then the longest spacing), and how many there were in all.
func (f *frontier) slowed() (map[string]string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	type host struct {
		key, why  string
		overloads int
		slowest   time.Duration
	}
	var all []host
	for _, h := range f.hosts {
		if why, ok := h.rate.slowed(f.cfg.PerHost); ok {
			n := 0
			for _, c := range h.rate.overloads {
				n += c
			}
			all = append(all, host{h.key, why, n, h.rate.slowest})
		}
	}
	slices.SortFunc(all, func(a, b host) int {
		return cmp.Or(cmp.Compare(b.overloads, a.overloads), cmp.Compare(b.slowest, a.slowest), strings.Compare(a.key, b.key))
	})
	if len(all) == 0 {
		return nil, 0
	}
	out := map[string]string{}
	for _, h := range all[:min(len(all), maxSlowedHosts)] {
		out[h.key] = h.why
	}
	return out, len(all)
}
