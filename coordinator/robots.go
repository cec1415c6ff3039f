package coordinator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/temoto/robotstxt"

	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// Bounds on fetching one robots.txt. RFC 9309 asks crawlers to read at least
// 500 KiB of it; more is not a robots.txt anyone meant.
const (
	robotsTimeout  = 10 * time.Second
	robotsMaxBytes = 512 << 10
	robotsParallel = 8
)

// robotsFetcher gets each host's robots.txt for the frontier, which asks
// once per host per run and applies the answer to every worker's tasks. A
// robots.txt is fetched as a page is: within the run's timeout (at most
// robotsTimeout), and tried again after a passing failure, as often and
// after the same backoff as a page.
type robotsFetcher struct {
	client  *http.Client
	agent   string
	sem     chan struct{}
	log     *slog.Logger
	timeout time.Duration
	retries int
	backoff time.Duration
}

// newRobotsFetcher returns a robots.txt fetcher whose connections go
// through the same guard as the workers' fetches, with the run's fetch
// config: a robots.txt is a request into the site's network like a page.
// retries and backoff are the run's.
func newRobotsFetcher(agent string, fetch scrape.Config, retries int, backoff time.Duration, log *slog.Logger) *robotsFetcher {
	timeout := robotsTimeout
	if fetch.Timeout > 0 {
		timeout = min(timeout, fetch.Timeout)
	}
	return &robotsFetcher{
		client: guardedClient(fetch, timeout, func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return http.ErrUseLastResponse
			}
			return nil
		}),
		agent:   agent,
		sem:     make(chan struct{}, robotsParallel),
		log:     log,
		timeout: timeout,
		retries: retries,
		backoff: backoff,
	}
}

// crawlDelay is the Crawl-delay data asks of our agent (of its group for
// us, or for "*"), zero if none. A value too large for a Duration comes out
// of the parser negative (or saturated, by platform); the frontier caps both.
func (r *robotsFetcher) crawlDelay(data *robotstxt.RobotsData) time.Duration {
	if data == nil {
		return 0
	}
	return data.FindGroup(r.agent).CrawlDelay
}

var allowAll, _ = robotstxt.FromStatusAndBytes(http.StatusNotFound, nil)

// robotsAnswer is what became of a host's robots.txt.
type robotsAnswer struct {
	data *robotstxt.RobotsData
	// refusal, when set, is why data refuses every URL though robots.txt
	// named none: it answered 5xx.
	refusal string
	// fails counts the last attempts that could not reach the host at all
	// (connect, dns, tls, timeout), and failure is the last one's error:
	// the host's breaker counts them.
	fails   int
	failure string
}

// fetch returns what host's robots.txt allows. A passing failure (a
// connection error, a timeout, 408, 429 or 5xx) is tried again, Retries
// times at most. A robots.txt that cannot be fetched at all (no such host,
// refused, timed out) allows everything: the pages' own fetches will then
// fail with the error that really happened, instead of every record blaming
// robots.txt. So does one on a private address the guard refuses: the pages
// then say blocked_address. A 5xx answer disallows all, as RFC 9309 says,
// and the answer says so. listed says the input lists host, which may then
// be reached at a private address, as its pages may.
func (r *robotsFetcher) fetch(ctx context.Context, scheme, host string, listed bool) robotsAnswer {
	fails := 0
	for attempt := 1; ; attempt++ {
		status, body, fail := r.get(ctx, scheme, host, listed)
		passing := retryable(queue.ResultMeta{Kind: scrape.KindHTTPStatus, Status: status})
		if fail != nil {
			passing = retryable(queue.ResultMeta{Kind: fail.Kind})
		}
		// As for a page: no HTTP answer at all (breaker.go, reached).
		unreached := fail != nil && status == 0 && unreachable(fail.Kind)
		fails++
		if !unreached {
			fails = 0
		}
		if ctx.Err() != nil {
			return robotsAnswer{data: allowAll} // the run is over: nobody reads the answer
		}
		if passing && attempt <= r.retries {
			wait := time.NewTimer(backoff(r.backoff, attempt+1, 0))
			select {
			case <-wait.C:
				continue
			case <-ctx.Done():
				wait.Stop()
				return robotsAnswer{data: allowAll}
			}
		}
		if fail != nil {
			r.log.Info("robots.txt unavailable, allowing all", "host", host, "attempts", attempt, "err", fail)
			a := robotsAnswer{data: allowAll}
			if unreached {
				a.fails, a.failure = fails, fail.Error()
			}
			return a
		}
		data, err := robotstxt.FromStatusAndBytes(status, body)
		if err != nil {
			r.log.Info("robots.txt unreadable, allowing all", "host", host, "status", status, "err", err)
			return robotsAnswer{data: allowAll}
		}
		a := robotsAnswer{data: data}
		if status >= 500 {
			a.refusal = fmt.Sprintf("robots.txt answered %d: treated as disallow-all (RFC 9309); --ignore-robots overrides", status)
			r.log.Info("robots.txt answers 5xx: every URL of the host is disallowed", "host", host, "status", status, "attempts", attempt)
		}
		return a
	}
}

// get makes one request for host's robots.txt: its status and body, or why
// it failed, as a page's record would say.
func (r *robotsFetcher) get(ctx context.Context, scheme, host string, listed bool) (int, []byte, *scrape.Error) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, nil, scrape.Errorf(scrape.KindFetch, "canceled")
	}
	defer func() { <-r.sem }()
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+"/robots.txt", nil)
	if err != nil {
		return 0, nil, scrape.Errorf(scrape.KindInvalidURL, "%v", err)
	}
	req.Header.Set("User-Agent", r.agent)
	if listed {
		req = req.WithContext(scrape.ListedHost(ctx, req.URL.Hostname()))
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, nil, scrape.Classify(ctx, r.timeout, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, robotsMaxBytes))
	if err != nil {
		if ctx.Err() != nil {
			return resp.StatusCode, nil, scrape.Classify(ctx, r.timeout, err)
		}
		return resp.StatusCode, nil, scrape.Errorf(scrape.KindBadBody, "read robots.txt: %v", err)
	}
	return resp.StatusCode, body, nil
}

// robotsRefusal is the record of a URL of h that its robots.txt refuses.
func robotsRefusal(h *hostState) *scrape.Error {
	if h.robotsWhy != "" {
		return scrape.Errorf(scrape.KindRobotsDisallowed, "%s", h.robotsWhy)
	}
	return scrape.Errorf(scrape.KindRobotsDisallowed, "robots.txt of %s disallows it", h.key)
}

// waitingOnRobots is how many hosts wait for their robots.txt.
func (f *frontier) waitingOnRobots() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.robotsWaiting
}

// fetchRobotsLocked fetches h's robots.txt in the background. The fetches
// are the frontier's: dispatch cancels and waits for them as it returns.
func (f *frontier) fetchRobotsLocked(h *hostState) {
	h.robotsWait = true
	f.robotsWaiting++
	listed := h.listed
	f.robots.Go(func() {
		got := f.cfg.Robots.fetch(f.robotsCtx, h.scheme, h.key, listed)
		crawlDelay := f.cfg.Robots.crawlDelay(got.data)
		f.mu.Lock()
		h.robots, h.robotsWhy, h.robotsWait = got.data, got.refusal, false
		f.robotsWaiting--
		f.crawlDelayLocked(h, crawlDelay)
		f.robotsFailedLocked(h, got.fails, got.failure, time.Now())
		f.mu.Unlock()
		f.poke()
	})
}

// guardedClient is the client the coordinator fetches with itself (robots.txt,
// sitemaps): the private-address guard of fetch on every dial, timeout for a
// whole request, and redirect's rule for redirects.
func guardedClient(fetch scrape.Config, timeout time.Duration, redirect func(*http.Request, []*http.Request) error) *http.Client {
	guard := scrape.NewGuard(fetch, &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second})
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy, t.DialContext = guard.Proxy, guard.DialContext
	return &http.Client{Transport: t, Timeout: timeout, CheckRedirect: redirect}
}
