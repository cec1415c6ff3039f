package coordinator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/temoto/robotstxt"

	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// --sitemap: the coordinator reads each input host's sitemaps itself, as it
// reads robots.txt, rather than sending them to workers as tasks of a new
// kind. A host's sitemaps are a few requests against the thousands of pages
// they list; the coordinator is where the URLs have to go anyway (the
// frontier, its seen-set and the hosts' logs on disk), and it keeps the
// protocol as it is. Each file is decoded as it streams, so a 50 MB sitemap
// costs one entry's memory; the URLs it lists become candidates at the back
// of their host's log (backlog.go), like a crawl's links: they get their
// task IDs there, wait on disk past the frontier's memory, and are recorded
// exactly once.

// DefaultSitemapMax is how many URLs one host's sitemaps may add to a run
// (--sitemap-max): a sitemap index can list tens of millions. 50,000 is what
// one sitemap file holds at most.
const DefaultSitemapMax = 50_000

const (
	// maxSitemapFiles bounds the sitemap files read for one host: its
	// indexes and what they list.
	maxSitemapFiles = 1000
	// sitemapBatch is how many entries go to the frontier under one lock.
	sitemapBatch = 256
	// sitemapParallel bounds the hosts whose sitemaps are read at once.
	sitemapParallel = 4
)

// sitemapFetcher reads sitemaps for the frontier. Its connections go
// through the workers' guard: a sitemap is a request into the site's network
// like a page.
type sitemapFetcher struct {
	client  *http.Client
	agent   string
	timeout time.Duration
	max     int
	sem     chan struct{}
	log     *slog.Logger
}

func newSitemapFetcher(agent string, fetch scrape.Config, max int, log *slog.Logger) *sitemapFetcher {
	timeout := fetch.Timeout
	if timeout <= 0 {
		timeout = scrape.DefaultTimeout
	}
	if max <= 0 {
		max = DefaultSitemapMax
	}
	return &sitemapFetcher{
		// A redirect is followed only within the host: the sitemap speaks
		// for its own host alone.
		client: guardedClient(fetch, timeout, func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 || queue.HostKey(req.URL) != queue.HostKey(via[0].URL) {
				return http.ErrUseLastResponse
			}
			return nil
		}),
		agent:   agent,
		timeout: timeout,
		max:     max,
		sem:     make(chan struct{}, sitemapParallel),
		log:     log,
	}
}

// open requests rawURL and returns its body, for a 2xx answer. listed says
// the input lists the URL's host, which may then be reached at a private
// address.
func (s *sitemapFetcher) open(ctx context.Context, rawURL string, listed bool) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", s.agent)
	if listed {
		req = req.WithContext(scrape.ListedHost(ctx, req.URL.Hostname()))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, scrape.Classify(ctx, s.timeout, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		resp.Body.Close()
		return nil, fmt.Errorf("answered %d", resp.StatusCode)
	}
	return resp.Body, nil
}

// declared returns the sitemaps host's robots.txt declares on its own host.
// A Sitemap: line may name another host's file (a cross-submit); it is left
// out, as the URLs it lists could not be the host's anyway.
func (s *sitemapFetcher) declared(ctx context.Context, scheme, host string, listed bool) []string {
	body, err := s.open(ctx, scheme+"://"+host+"/robots.txt", listed)
	if err != nil {
		return nil
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, robotsMaxBytes))
	if err != nil {
		return nil
	}
	data, err := robotstxt.FromStatusAndBytes(http.StatusOK, b)
	if err != nil {
		return nil
	}
	var own []string
	for _, sm := range data.Sitemaps {
		if u, err := url.Parse(sm); err == nil && queue.HostKey(u) == host && (u.Scheme == "http" || u.Scheme == "https") {
			own = append(own, u.String())
		}
	}
	return own
}

// sitemapHostLocked starts reading the sitemaps of u's host, the first time
// an input line names the host. The reads are the frontier's background
// fetches: dispatch cancels and waits for them as it returns, and the run
// is not done while one is under way.
func (f *frontier) sitemapHostLocked(u *url.URL) {
	key := queue.HostKey(u)
	if f.cfg.Sitemaps == nil || f.sitemapHosts[key] {
		return
	}
	if f.sitemapHosts == nil {
		f.sitemapHosts = map[string]bool{}
	}
	f.sitemapHosts[key] = true
	f.sitemapsWaiting++
	scheme := u.Scheme
	f.robots.Go(func() {
		n := f.walkSitemaps(f.robotsCtx, scheme, key)
		f.log.Info("sitemaps read", "host", key, "urls", n)
		f.mu.Lock()
		f.sitemapsWaiting--
		f.checkDoneLocked()
		f.mu.Unlock()
		f.poke()
	})
}

// walkSitemaps reads host's sitemaps: those its robots.txt declares, else
// /sitemap.xml, and the sitemaps their indexes list, breadth first. It
// hands their URLs to the frontier and returns how many it took, at most
// the fetcher's max; a URL of another host is not taken (the protocol lets
// a sitemap list only its own host's URLs).
func (f *frontier) walkSitemaps(ctx context.Context, scheme, host string) int {
	s := f.cfg.Sitemaps
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	defer func() { <-s.sem }()
	// The input names host: its sitemaps may be on a private address, as
	// its pages may.
	const listed = true
	todo := s.declared(ctx, scheme, host, listed)
	if len(todo) == 0 {
		todo = []string{scheme + "://" + host + "/sitemap.xml"}
	}
	read := map[string]bool{}
	taken := 0
	var batch []sitemapEntry
	more := true
	for files := 0; more && len(todo) > 0 && files < maxSitemapFiles && taken < s.max && ctx.Err() == nil; {
		sm := todo[0]
		todo = todo[1:]
		if read[sm] {
			continue
		}
		read[sm] = true
		files++
		body, err := s.open(ctx, sm, listed)
		if err != nil {
			f.log.Info("sitemap unavailable", "sitemap", sm, "err", err)
			continue
		}
		err = readSitemap(body, func(index bool, e sitemapEntry) bool {
			u, err := url.Parse(e.loc)
			if err != nil || queue.HostKey(u) != host || (u.Scheme != "http" && u.Scheme != "https") {
				return true
			}
			if index {
				if len(read)+len(todo) < maxSitemapFiles {
					todo = append(todo, u.String())
				}
				return true
			}
			batch = append(batch, e)
			taken++
			if len(batch) == sitemapBatch {
				more = f.seedSitemap(sm, batch)
				batch = batch[:0]
			}
			return more && taken < s.max
		})
		body.Close()
		if err != nil {
			f.log.Info("sitemap read in part", "sitemap", sm, "err", err)
		}
		if len(batch) > 0 && more {
			more = f.seedSitemap(sm, batch)
			batch = batch[:0]
		}
	}
	return taken
}

// seedSitemap puts the URLs of entries, listed by the sitemap at parent, at
// the back of their host's log with their lastmod, as discover does a
// page's links: within the crawl's scope, once each, at depth 0 (so --depth
// follows links from them as from an input line). It reports false once
// --max-pages is reached or the log failed: no more is wanted.
func (f *frontier) seedSitemap(parent string, entries []sitemapEntry) bool {
	c := f.cfg.Crawl
	f.mu.Lock()
	defer f.mu.Unlock()
	added := false
	defer func() {
		if added {
			f.poke()
		}
	}()
	for _, e := range entries {
		if c.maxPages > 0 && f.admitted >= c.maxPages {
			return false
		}
		u, key, ok := c.check(e.loc)
		if !ok {
			continue
		}
		f.nextID++
		hk := queue.HostKey(u)
		cand := candidate{id: f.nextID, url: key, parent: parent, listed: c.seeds[hk], lastmod: e.lastmod}
		if err := f.foundLocked(f.hostLocked(hk, u.Scheme), cand); err != nil {
			f.failLocked(err)
			return false
		}
		added = true
	}
	return true
}
