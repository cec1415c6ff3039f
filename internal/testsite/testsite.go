// Package testsite is a small web site with well-known pages and well-known
// misbehaviours, served by tests and benchmarks on their own addresses.
package testsite

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Site serves:
//
//	/page/N           an HTML page with a title, a description, headings and links
//	/status/CODE      an HTML page with that status
//	/hang             headers never come
//	/stall            headers, part of a body, then nothing
//	/huge             an endless HTML body
//	/loop/a, /loop/b  redirects to each other forever
//	/redirect/K       K redirects, then /page/0
//	/binary           application/octet-stream
//	/slow/MS/N        /page/N after MS milliseconds
//	/badbytes         an HTML page that says UTF-8 and holds invalid bytes
//	/gzipbomb         gzip-encoded HTML that inflates to 1 GiB of zeros
//	/tree/...         an endless site: each page links to Fanout pages below it
//	/login            sets the session cookie, redirects to /members/
//	/members/         an index of /members/N, member pages of 50 ms; 403 without the cookie
//	/fresh/N          a page with an ETag and a Last-Modified, 304 to them (fresh.go)
//	/bare/N           the same page without validators
type Site struct {
	Pages int
	// Fanout is how many pages each page of /tree/ links to (default
	// DefaultFanout).
	Fanout int

	mu   sync.Mutex
	hits map[string]int
	done chan struct{}
	once sync.Once

	// versions are the /fresh/ and /bare/ pages changed (Change), and
	// bodyBytes the bytes of their bodies served (fresh.go).
	versions  map[int]int
	bodyBytes atomic.Int64
}

// New returns a site with pages /page/0 to /page/pages-1.
func New(pages int) *Site {
	return &Site{Pages: pages, hits: map[string]int{}, done: make(chan struct{})}
}

// Close releases handlers that are hanging on purpose, so the server that
// serves the site can shut down.
func (s *Site) Close() { s.once.Do(func() { close(s.done) }) }

// Hits is how many requests path has had.
func (s *Site) Hits(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// Title is the title of /page/n, for tests to check extraction against.
func Title(n int) string { return fmt.Sprintf("Page %d", n) }

// Description is the meta description of /page/n.
func Description(n int) string { return fmt.Sprintf("All about item %d.", n) }

// Links are the site paths /page/n links to, in document order.
func (s *Site) Links(n int) []string {
	return []string{
		fmt.Sprintf("/page/%d", (n+1)%s.Pages),
		fmt.Sprintf("/page/%d", (n*7+3)%s.Pages),
		"/page/0",
	}
}

func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.hits[r.URL.Path]++
	s.mu.Unlock()

	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch parts[0] {
	case "page":
		n, err := strconv.Atoi(at(parts, 1))
		if err != nil || n < 0 || n >= s.Pages {
			http.NotFound(w, r)
			return
		}
		s.page(w, n)
	case "status":
		code, err := strconv.Atoi(at(parts, 1))
		if err != nil || code < 200 || code > 599 {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(code)
		fmt.Fprintf(w, "<html><head><title>Status %d</title></head><body><h1>%d</h1></body></html>", code, code)
	case "hang":
		s.wait(r, 0)
	case "stall":
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "<html><head><title>Stalled")
		w.(http.Flusher).Flush()
		s.wait(r, 0)
	case "huge":
		w.Header().Set("Content-Type", "text/html")
		chunk := []byte(strings.Repeat("<p>filler filler filler filler</p>\n", 1024))
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-s.done:
				return
			default:
			}
		}
	case "loop":
		next := "/loop/a"
		if at(parts, 1) == "a" {
			next = "/loop/b"
		}
		http.Redirect(w, r, next, http.StatusFound)
	case "redirect":
		k, _ := strconv.Atoi(at(parts, 1))
		if k <= 0 {
			http.Redirect(w, r, "/page/0", http.StatusFound)
			return
		}
		http.Redirect(w, r, "/redirect/"+strconv.Itoa(k-1), http.StatusFound)
	case "binary":
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(make([]byte, 4096))
	case "slow":
		ms, _ := strconv.Atoi(at(parts, 1))
		n, _ := strconv.Atoi(at(parts, 2))
		if !s.wait(r, time.Duration(ms)*time.Millisecond) {
			return
		}
		s.page(w, n%max(s.Pages, 1))
	case "login":
		s.login(w, r)
	case "members":
		s.members(w, r, parts)
	case "badbytes":
		s.badBytes(w)
	case "gzipbomb":
		s.gzipBomb(w)
	case "fresh", "bare":
		s.fresh(w, r, parts)
	case "tree":
		fanout := s.Fanout
		if fanout <= 0 {
			fanout = DefaultFanout
		}
		tree(w, r.URL.Path, fanout)
	default:
		http.NotFound(w, r)
	}
}

// wait blocks for d (forever when 0) or until the client or the site goes
// away; it reports whether the full time passed.
func (s *Site) wait(r *http.Request, d time.Duration) bool {
	var timer <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-timer:
		return true
	case <-r.Context().Done():
	case <-s.done:
	}
	return false
}

func (s *Site) page(w http.ResponseWriter, n int) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var b strings.Builder
	fmt.Fprintf(&b, `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>%s</title>
<meta name="description" content="%s">
</head><body>
<h1>Heading %d</h1>
<nav>`, Title(n), Description(n), n)
	for _, l := range s.Links(n) {
		fmt.Fprintf(&b, `<a href="%s">link</a> `, l)
	}
	fmt.Fprintf(&b, `</nav>
<h2>Details of %d</h2>
<p>%s</p>
</body></html>`, n, strings.Repeat("Lorem ipsum dolor sit amet. ", 20))
	w.Write([]byte(b.String()))
}

// DefaultFanout is how many pages each page of /tree/ links to, unless the
// site says otherwise.
const DefaultFanout = 50

// tree serves a page of the endless site under /tree/: links to the fanout
// pages below it.
func tree(w http.ResponseWriter, path string, fanout int) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var b strings.Builder
	base := strings.TrimSuffix(path, "/")
	fmt.Fprintf(&b, "<!doctype html>\n<html><head><title>Tree %s</title></head><body><h1>%s</h1>\n", base, base)
	for i := range fanout {
		fmt.Fprintf(&b, `<a href="%s/%d">%d</a> `, base, i, i)
	}
	b.WriteString("</body></html>")
	w.Write([]byte(b.String()))
}

func at(parts []string, i int) string {
	if i < len(parts) {
		return parts[i]
	}
	return ""
}

// ClosedPort returns a loopback address nothing listens on: a connection to
// it is refused.
func ClosedPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
