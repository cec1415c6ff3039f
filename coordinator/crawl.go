package coordinator

import (
	"hash/fnv"
	"net/url"
	"strings"

	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// crawlScope decides which discovered links become tasks. It is used under
// the frontier's lock.
type crawlScope struct {
	depth    int
	sameHost bool
	allow    []string // domains allowed, with their subdomains
	maxPages int
	seeds    map[string]bool
	// seen holds a 64-bit hash of every normalised URL admitted: about 10
	// bytes a URL in a Go map, so ten million URLs take ~100 MB. Two URLs
	// whose hashes collide (odds ~1 in 3·10^6 at ten million) are taken as
	// one, and the second is not fetched.
	seen map[uint64]struct{}
}

func newCrawlScope(depth int, sameHost bool, allow []string, maxPages int) *crawlScope {
	c := &crawlScope{depth: depth, sameHost: sameHost, maxPages: maxPages, seeds: map[string]bool{}, seen: map[uint64]struct{}{}}
	for _, d := range allow {
		if d = strings.ToLower(strings.Trim(strings.TrimSpace(d), ".")); d != "" {
			c.allow = append(c.allow, strings.TrimPrefix(d, "*."))
		}
	}
	return c
}

// seed records an input URL: its host is in scope for --same-host, and the
// URL itself is not fetched again when a page links to it.
func (c *crawlScope) seed(u *url.URL) {
	c.seeds[queue.HostKey(u)] = true
	c.seen[hash(normalize(*u).String())] = struct{}{}
}

// see marks u as found, as a resumed run does for the pages found before.
func (c *crawlScope) see(u *url.URL) {
	c.seen[hash(normalize(*u).String())] = struct{}{}
}

// admit reports whether link should be crawled, and its normalised form.
func (c *crawlScope) admit(link string) (*url.URL, string, bool) {
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, "", false
	}
	u = normalize(*u)
	n := u.String()
	if c.sameHost && !c.seeds[queue.HostKey(u)] {
		return nil, "", false
	}
	if len(c.allow) > 0 && !c.allowed(strings.ToLower(u.Hostname())) {
		return nil, "", false
	}
	h := hash(n)
	if _, dup := c.seen[h]; dup {
		return nil, "", false
	}
	c.seen[h] = struct{}{}
	return u, n, true
}

func (c *crawlScope) allowed(host string) bool {
	for _, d := range c.allow {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// normalize makes the forms of one URL into one: scheme and host lower case,
// default ports dropped, dot segments resolved, an empty path made "/", the
// fragment removed. The query is kept as it is: it can name another page.
// It works on a copy: the caller's URL is left as it was.
func normalize(u url.URL) *url.URL {
	u.Scheme = strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	u.Host = host
	u.Fragment, u.RawFragment = "", ""
	u.User = nil
	if u.Path == "" {
		u.Path = "/"
	}
	// Resolving against the URL itself removes "." and ".." segments.
	return u.ResolveReference(&url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery})
}

func hash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// discover queues the links of a crawled page that are in scope and new.
func (f *frontier) discover(parent scrape.Task, links []string) {
	c := f.cfg.Crawl
	if c == nil || parent.Depth >= c.depth {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	added := false
	for _, l := range links {
		if c.maxPages > 0 && f.admitted >= c.maxPages {
			break
		}
		u, key, ok := c.admit(l)
		if !ok {
			continue
		}
		f.admitted++
		f.nextID++
		// A page on the host of an input line is as much the user's request
		// as the line: its fetch may reach that host at a private address.
		// The seeds are the lines read so far; a link found before its
		// host's line is read stays unlisted, and is refused if private.
		t := scrape.Task{ID: f.nextID, URL: key, Attempt: 1, Depth: parent.Depth + 1, Parent: parent.URL, Listed: c.seeds[queue.HostKey(u)]}
		f.sink.found(t)
		f.enqueueLocked(t, u)
		added = true
	}
	if added {
		f.poke()
	}
}
