package coordinator

import (
	"math/rand/v2"
	"time"

	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// retryable says which failures are worth another attempt: the passing
// ones. A 404 or a DNS failure will not heal in a few seconds.
func retryable(m queue.ResultMeta) bool {
	switch m.Kind {
	case scrape.KindTimeout, scrape.KindConnect, scrape.KindBadBody:
		return true
	case scrape.KindHTTPStatus:
		return m.Status == 408 || m.Status == 429 || m.Status >= 500
	}
	return false
}

// maxBackoff caps one wait, Retry-After included: a site asking for a day
// gets its record with the error instead of a run that never ends.
const maxBackoff = 5 * time.Minute

// backoff is the wait before attempt n (2 or more): first about base, then
// doubling, with jitter, and never shorter than the site's own Retry-After.
// The doubling stops at maxBackoff before the jitter is drawn, so no number of
// attempts overflows the wait or wraps it negative.
func backoff(base time.Duration, n int, retryAfter time.Duration) time.Duration {
	d := max(base, 1)
	for i := 2; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	d = d/2 + rand.N(d+1)
	return min(max(d, retryAfter), maxBackoff)
}

// LongestRetryWait is the most a page that keeps failing waits in all
// between its attempts, from the backoffs alone: retries waits, doubling
// from base, each with its jitter and within maxBackoff.
func LongestRetryWait(base time.Duration, retries int) time.Duration {
	var total time.Duration
	d := max(base, 1)
	for range retries {
		total += min(d+d/2, maxBackoff)
		if d < maxBackoff {
			d *= 2
		}
	}
	return total
}
