package testsite

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// freshBase is when every /fresh/ page was last modified, before Change.
var freshBase = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// Change makes page n of /fresh/ and /bare/ another page: a new body, a new
// ETag, a later Last-Modified.
func (s *Site) Change(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.versions == nil {
		s.versions = map[int]int{}
	}
	s.versions[n]++
}

// BodyBytes is how many bytes of body the /fresh/ and /bare/ pages have
// served: a 304 serves none.
func (s *Site) BodyBytes() int64 { return s.bodyBytes.Load() }

// fresh serves /fresh/N with its validators through http.ServeContent, which
// answers If-None-Match and If-Modified-Since, or /bare/N without them. Its
// links are to pages of the same kind.
func (s *Site) fresh(w http.ResponseWriter, r *http.Request, parts []string) {
	n, err := strconv.Atoi(at(parts, 1))
	if err != nil || n < 0 || n >= s.Pages {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	v := s.versions[n]
	s.mu.Unlock()
	kind := parts[0]
	var b strings.Builder
	fmt.Fprintf(&b, "<!doctype html>\n<html><head><title>%s</title>\n<meta name=\"description\" content=\"%s\"></head><body>\n<h1>Heading %d</h1>\n<nav>",
		Title(n), Description(n), n)
	for _, l := range []int{(n + 1) % s.Pages, (n*7 + 3) % s.Pages, 0} {
		fmt.Fprintf(&b, `<a href="/%s/%d">link</a> `, kind, l)
	}
	fmt.Fprintf(&b, "</nav>\n<p>Version %d. %s</p>\n</body></html>", v, strings.Repeat("Lorem ipsum dolor sit amet. ", 20))
	body := b.String()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	cw := &countingWriter{ResponseWriter: w, n: &s.bodyBytes}
	if kind == "bare" {
		cw.Write([]byte(body))
		return
	}
	w.Header().Set("Etag", fmt.Sprintf(`"p%d-v%d"`, n, v))
	http.ServeContent(cw, r, "", freshBase.Add(time.Duration(v)*time.Hour), strings.NewReader(body))
}

// countingWriter counts the body bytes written through it.
type countingWriter struct {
	http.ResponseWriter
	n interface{ Add(int64) int64 }
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}
