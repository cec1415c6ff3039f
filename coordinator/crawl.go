package coordinator

import (
	"fmt"
	"hash/fnv"
	"net/url"
	"regexp"
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
	// match and exclude are --match and --exclude: a link is followed if
	// it matches one of match (when there are any) and none of exclude.
	match, exclude []*regexp.Regexp
	seeds          map[string]bool
	// seen holds a 64-bit hash of every normalised URL admitted as a task:
	// about 10 bytes a URL in a Go map, so ten million URLs take ~100 MB.
	// Links found and not admitted yet are not in it: they wait on disk in
	// their host's log, and one found twice is dropped when the second
	// comes to be admitted (backlog.go), so the set grows with the pages
	// fetched, not with the links found. Two URLs whose hashes collide
	// (odds ~1 in 3·10^6 at ten million) are taken as one, and the second is
	// not fetched.
	seen map[uint64]struct{}
	// fresh are the hashes admitted since the last checkpoint, which
	// appends them to the seen file.
	fresh []uint64
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

// claim adds a URL's hash to the seen-set, and reports whether it was new.
func (c *crawlScope) claim(h uint64) bool {
	if _, dup := c.seen[h]; dup {
		return false
	}
	c.seen[h] = struct{}{}
	c.fresh = append(c.fresh, h)
	return true
}

// check reports whether link is in the crawl's scope and not admitted yet,
// and its normalised form. It leaves the seen-set as it was: claim admits.
func (c *crawlScope) check(link string) (*url.URL, string, bool) {
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
	if !c.matches(n) {
		return nil, "", false
	}
	if _, dup := c.seen[hash(n)]; dup {
		return nil, "", false
	}
	return u, n, true
}

// matches applies --match and --exclude to a normalised link.
func (c *crawlScope) matches(link string) bool {
	for _, re := range c.exclude {
		if re.MatchString(link) {
			return false
		}
	}
	if len(c.match) == 0 {
		return true
	}
	for _, re := range c.match {
		if re.MatchString(link) {
			return true
		}
	}
	return false
}

// CompilePatterns compiles the expressions of a --match or --exclude
// (Go's RE2 syntax, matched anywhere in the normalised URL unless
// anchored). The error names the flag and the expression.
func CompilePatterns(flag string, exprs []string) ([]*regexp.Regexp, error) {
	out := make([]*regexp.Regexp, 0, len(exprs))
	for _, e := range exprs {
		re, err := regexp.Compile(e)
		if err != nil {
			return nil, fmt.Errorf("--%s %q: %w", flag, e, err)
		}
		out = append(out, re)
	}
	return out, nil
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

// discover puts the links of a crawled page that are in scope and not
// admitted yet at the back of their hosts' logs (backlog.go), with the IDs
// their tasks will have.
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
		u, key, ok := c.check(l)
		if !ok {
			continue
		}
		f.nextID++
		// A page on the host of an input line is as much the user's request
		// as the line: its fetch may reach that host at a private address.
		// The seeds are the lines read so far; a link found before its
		// host's line is read stays unlisted, and is refused if private.
		hk := queue.HostKey(u)
		cand := candidate{id: f.nextID, url: key, parent: parent.URL, depth: parent.Depth + 1, listed: c.seeds[hk]}
		if err := f.foundLocked(f.hostLocked(hk, u.Scheme), cand); err != nil {
			f.failLocked(err)
			break
		}
		added = true
	}
	if added {
		f.poke()
	}
}
