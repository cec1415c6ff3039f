package coordinator

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/temoto/robotstxt"

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
// once per host per run and applies the answer to every worker's tasks.
type robotsFetcher struct {
	client *http.Client
	agent  string
	sem    chan struct{}
	log    *slog.Logger
}

// newRobotsFetcher returns a robots.txt fetcher whose connections go
// through the same guard as the workers' fetches, with the run's fetch
// config: a robots.txt is a request into the site's network like a page.
func newRobotsFetcher(agent string, fetch scrape.Config, log *slog.Logger) *robotsFetcher {
	guard := scrape.NewGuard(fetch, &net.Dialer{Timeout: robotsTimeout, KeepAlive: 30 * time.Second})
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy, t.DialContext = guard.Proxy, guard.DialContext
	return &robotsFetcher{
		client: &http.Client{
			Transport: t,
			Timeout:   robotsTimeout,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return http.ErrUseLastResponse
				}
				return nil
			},
		},
		agent: agent,
		sem:   make(chan struct{}, robotsParallel),
		log:   log,
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

// fetch returns what host's robots.txt allows. A robots.txt that cannot be
// fetched at all (no such host, refused, timed out) allows everything: the
// pages' own fetches will then fail with the error that really happened,
// instead of every record blaming robots.txt. So does one on a private
// address the guard refuses: the pages then say blocked_address. A 5xx
// answer disallows all, as RFC 9309 says. listed says the input lists host,
// which may then be reached at a private address, as its pages may.
func (r *robotsFetcher) fetch(ctx context.Context, scheme, host string, listed bool) *robotstxt.RobotsData {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return allowAll // the run is over: nobody reads the answer
	}
	defer func() { <-r.sem }()
	ctx, cancel := context.WithTimeout(ctx, robotsTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+"/robots.txt", nil)
	if err != nil {
		return allowAll
	}
	req.Header.Set("User-Agent", r.agent)
	if listed {
		req = req.WithContext(scrape.ListedHost(ctx, req.URL.Hostname()))
	}
	resp, err := r.client.Do(req)
	if err != nil {
		r.log.Info("robots.txt unavailable, allowing all", "host", host, "err", err)
		return allowAll
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, robotsMaxBytes))
	if err != nil {
		return allowAll
	}
	data, err := robotstxt.FromStatusAndBytes(resp.StatusCode, body)
	if err != nil {
		r.log.Info("robots.txt unreadable, allowing all", "host", host, "status", resp.StatusCode, "err", err)
		return allowAll
	}
	return data
}
