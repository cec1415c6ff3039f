// Package site generates the benchmark's web site: deterministic article
// pages of about 12 KB, each with a title, a meta description, one h1, a few
// h2/h3 headings and exactly 20 distinct links to other pages of the site.
package site

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LinksPerPage is how many distinct links every page carries when the site
// has more than LinksPerPage pages.
const LinksPerPage = 20

// Site serves /page/0 .. /page/Pages-1. Every response waits Latency first.
type Site struct {
	Pages   int
	Latency time.Duration
	// Validators gives every page an ETag and a Last-Modified, and answers
	// a request that names them with 304 Not Modified (scrape --since).
	Validators bool

	paras []string // a fixed pool of paragraphs pages are assembled from
	// served counts the bytes of page bodies written, which /_served
	// tells.
	served atomic.Int64
}

// Modified is every page's Last-Modified, with Validators: the pages never
// change.
var Modified = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// notModified reports whether r names page n's validators.
func notModified(r *http.Request, etag string) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		return inm == etag
	}
	t, err := http.ParseTime(r.Header.Get("If-Modified-Since"))
	return err == nil && !t.Before(Modified)
}

// New returns a site of pages pages.
func New(pages int, latency time.Duration) *Site {
	return &Site{Pages: pages, Latency: latency, paras: paragraphs(256)}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.Latency > 0 {
		t := time.NewTimer(s.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if r.URL.Path == "/robots.txt" {
		// Every page allowed, as most sites' robots.txt would: a tool that
		// obeys robots.txt pays one request per host for it, as it would
		// anywhere.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(Robots))
		return
	}
	if r.URL.Path == "/_served" {
		// How many bytes of page bodies the site has served so far.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(strconv.FormatInt(s.served.Load(), 10) + "\n"))
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/page/")
	n, err := strconv.Atoi(rest)
	if !ok || err != nil || n < 0 || n >= s.Pages {
		http.NotFound(w, r)
		return
	}
	if s.Validators {
		etag := `"p` + strconv.Itoa(n) + `"`
		w.Header().Set("Etag", etag)
		w.Header().Set("Last-Modified", Modified.Format(http.TimeFormat))
		if notModified(r, etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	bp := bufPool.Get().(*[]byte)
	page := s.Page((*bp)[:0], r.Host, n)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(page)))
	w.Header().Set("Cache-Control", "max-age=300")
	written, _ := w.Write(page)
	s.served.Add(int64(written))
	*bp = page
	bufPool.Put(bp)
}

// Robots is the site's robots.txt: every page allowed.
const Robots = "User-agent: *\nAllow: /\n"

// Title is the <title> of page n.
func Title(n int) string {
	return topics[n%len(topics)] + " notes, part " + strconv.Itoa(n) + " | The Bench Journal"
}

// Links returns the page numbers page n links to, in document order.
func (s *Site) Links(n int) []int {
	k := min(LinksPerPage, s.Pages-1)
	if k <= 0 {
		return nil
	}
	step := max(1, (s.Pages-1)/k)
	out := make([]int, k)
	for i := range out {
		out[i] = (n + 1 + i*step) % s.Pages
	}
	return out
}

// Page appends the HTML of page n, as served on host, to dst.
func (s *Site) Page(dst []byte, host string, n int) []byte {
	rng := splitmix(uint64(n)*0x9E3779B97F4A7C15 + 1)
	links := s.Links(n)
	topic := topics[n%len(topics)]
	next := 0
	link := func(dst []byte, style int, text string) []byte {
		if next >= len(links) {
			return dst
		}
		p := strconv.Itoa(links[next])
		next++
		dst = append(dst, `<a href="`...)
		switch style {
		case 0: // absolute path
			dst = append(dst, "/page/"...)
		case 1: // relative to /page/n
			dst = append(dst, ""...)
		default: // absolute URL
			dst = append(dst, "http://"...)
			dst = append(dst, host...)
			dst = append(dst, "/page/"...)
		}
		dst = append(dst, p...)
		dst = append(dst, `">`...)
		dst = append(dst, text...)
		return append(dst, "</a>"...)
	}

	dst = append(dst, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"...)
	dst = append(dst, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>"...)
	dst = append(dst, Title(n)...)
	dst = append(dst, "</title>\n<meta name=\"description\" content=\""...)
	dst = append(dst, Description(n)...)
	dst = append(dst, "\">\n<meta property=\"og:title\" content=\""...)
	dst = append(dst, topic...)
	dst = append(dst, " notes, part "...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, "\">\n<meta property=\"og:type\" content=\"article\">\n"...)
	dst = append(dst, head...)
	dst = append(dst, "</head>\n<body class=\"article\">\n<header class=\"site\"><div class=\"brand\">The Bench Journal</div>\n<nav aria-label=\"main\">\n"...)
	for i := range 5 {
		dst = append(dst, "<span class=\"nav-item\">"...)
		dst = link(dst, 0, navWords[i])
		dst = append(dst, "</span>\n"...)
	}
	dst = append(dst, "</nav></header>\n<main id=\"content\"><article>\n<h1>"...)
	dst = append(dst, topic...)
	dst = append(dst, " notes, part "...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, "</h1>\n<p class=\"meta\">Posted <time datetime=\"2024-03-02\">2 March 2024</time> by <span class=\"author\">Ada</span> &middot; 7 min read</p>\n"...)
	for sec := range 3 {
		dst = append(dst, "<section>\n<h2>"...)
		dst = append(dst, sections[(n+sec)%len(sections)]...)
		dst = append(dst, "</h2>\n"...)
		for p := range 4 {
			if p == 2 {
				dst = append(dst, "<h3>"...)
				dst = append(dst, subsections[(n*3+sec)%len(subsections)]...)
				dst = append(dst, "</h3>\n"...)
			}
			dst = append(dst, "<p>"...)
			dst = append(dst, s.paras[rng.next()%uint64(len(s.paras))]...)
			if p%2 == 0 && next+1 < min(15, len(links)) {
				dst = append(dst, " See also "...)
				dst = link(dst, 1+(p/2)%2, "the notes on "+topics[(n+p+sec)%len(topics)])
				dst = append(dst, " and "...)
				dst = link(dst, 1, "part "+strconv.Itoa(links[next]))
				dst = append(dst, '.')
			}
			dst = append(dst, "</p>\n"...)
		}
		dst = append(dst, "</section>\n"...)
	}
	dst = append(dst, "</article>\n<aside class=\"related\"><h2>Related</h2><ul>\n"...)
	for next < len(links)-3 {
		dst = append(dst, "<li>"...)
		dst = link(dst, 0, "Related reading")
		dst = append(dst, "</li>\n"...)
	}
	dst = append(dst, "</ul></aside>\n</main>\n<footer class=\"site\"><p>&copy; 2024 The Bench Journal.</p><ul class=\"footer-links\">\n"...)
	for next < len(links) {
		dst = append(dst, "<li>"...)
		dst = link(dst, 2, "Archive")
		dst = append(dst, "</li>\n"...)
	}
	dst = append(dst, "</ul>\n"...)
	dst = append(dst, foot...)
	return append(dst, "</body>\n</html>\n"...)
}

// Description is the meta description of page n.
func Description(n int) string {
	return "Field notes, part " + strconv.Itoa(n) + ", on " + strings.ToLower(topics[n%len(topics)]) +
		": what we measured, what surprised us and what we would do differently next time."
}

const head = `<link rel="canonical" href="/">
<link rel="stylesheet" href="/assets/site.css?v=31">
<link rel="icon" href="/favicon.ico">
<style>body{font-family:Georgia,serif;margin:0 auto;max-width:44em;line-height:1.55;color:#222}header.site{display:flex;justify-content:space-between;border-bottom:1px solid #ddd}nav a{margin-right:1em;text-decoration:none}.meta{color:#666;font-size:.9em}aside.related{border-top:1px solid #eee;margin-top:2em}footer.site{font-size:.8em;color:#888}</style>
<script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments);}gtag("js",new Date());gtag("config","G-BENCH0000");(function(){var d=document,s=d.createElement("script");s.async=true;s.src="/assets/analytics.js";d.head.appendChild(s);})();</script>
`

const foot = `<script type="application/ld+json">{"@context":"https://schema.org","@type":"Article","publisher":{"@type":"Organization","name":"The Bench Journal"}}</script>
<script src="/assets/site.js" defer></script>
`

var (
	topics      = []string{"Queueing", "Caching", "Crawling", "Indexing", "Scheduling", "Replication", "Sharding", "Retries", "Backpressure", "Timeouts", "Batching", "Compression"}
	navWords    = []string{"Home", "Archive", "Topics", "About", "Subscribe"}
	sections    = []string{"Why it matters", "What we tried first", "Measuring it", "Where the time went", "A better design", "Failure modes", "Numbers", "Open questions"}
	subsections = []string{"A worked example", "The slow path", "Edge cases", "Trade-offs", "In production", "Caveats", "What the profile said"}
	words       = strings.Fields(`queue worker node fetch page link timeout retry slot window latency throughput memory
		connection pool host cluster result record stream consumer acknowledge deliver publish coordinator frontier
		parser document heading title description crawl politeness budget backoff jitter socket buffer kernel scheduler
		request response header body gzip charset redirect status error measure profile benchmark median percentile
		the a of to and in that is for it with as was on be by this which from at are or an have not but had all
		were when we there can more if no out so what up its about into than them only other new some could time
		these two may then do first any like now my such our over even most made after also did many before must`)
)

// paragraphs makes n paragraphs of 95-135 words from a fixed seed.
func paragraphs(n int) []string {
	rng := splitmix(42)
	out := make([]string, n)
	var b strings.Builder
	for i := range out {
		b.Reset()
		nw := 95 + int(rng.next()%40)
		for w := range nw {
			word := words[rng.next()%uint64(len(words))]
			if w == 0 {
				b.WriteString(strings.ToUpper(word[:1]))
				b.WriteString(word[1:])
				continue
			}
			if rng.next()%11 == 0 {
				b.WriteString(", ")
			} else if rng.next()%17 == 0 {
				b.WriteString(". ")
				b.WriteString(strings.ToUpper(word[:1]))
				b.WriteString(word[1:])
				continue
			} else {
				b.WriteByte(' ')
			}
			if rng.next()%29 == 0 {
				b.WriteString("<em>" + word + "</em>")
			} else {
				b.WriteString(word)
			}
		}
		b.WriteByte('.')
		out[i] = b.String()
	}
	return out
}

type splitmixState uint64

func splitmix(seed uint64) *splitmixState { s := splitmixState(seed); return &s }

func (s *splitmixState) next() uint64 {
	*s += 0x9E3779B97F4A7C15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}
