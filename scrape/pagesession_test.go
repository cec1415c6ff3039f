package scrape_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/scrape-cluster/scrape/scrape"
)

// A page session's requests, as a browser hands them over: the document
// and its redirects bounded, validators on the first request only, bodies
// bounded and decoded, cookies kept across requests made at once.
func TestPageSession(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/set/"):
			http.SetCookie(w, &http.Cookie{Name: "c" + strings.TrimPrefix(r.URL.Path, "/set/"), Value: "1", Path: "/"})
		case r.URL.Path == "/moved":
			http.Redirect(w, r, "/doc", http.StatusFound)
			return
		case r.URL.Path == "/big":
			fmt.Fprint(w, strings.Repeat("x", 2000))
			return
		case r.Header.Get("If-None-Match") != "":
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"e1"`)
		fmt.Fprintf(w, "cookie=%s inm=%s", r.Header.Get("Cookie"), r.Header.Get("If-None-Match"))
	}))
	t.Cleanup(srv.Close)
	f := scrape.NewFetcher(scrape.Config{MaxBody: 1000, MaxRedirects: 1, Session: true})
	t.Cleanup(f.Close)
	page, _ := url.Parse(srv.URL + "/moved")
	ctx := scrape.WithValidators(scrape.Listed(t.Context()), `"e0"`, "")
	s := f.NewPageSession(ctx, page)

	doc := func(path string) (*scrape.BrowserResponse, *scrape.Error) {
		return s.Do(t.Context(), scrape.BrowserRequest{Method: "GET", URL: srv.URL + path, Document: true})
	}
	// The first document request carries the validators (this server
	// redirects whatever they say).
	resp, e := doc("/moved")
	if e != nil || resp.Status != http.StatusFound || resp.Header.Get("Location") != "/doc" {
		t.Fatalf("first hop: %+v %v", resp, e)
	}
	resp, e = doc("/doc")
	if e != nil || resp.Status != 200 || !strings.HasSuffix(string(resp.Body), "inm=") {
		t.Fatalf("second hop: %+v %v: validators go with the first request only", resp, e)
	}
	if _, e = doc("/doc"); e == nil || e.Kind != scrape.KindTooManyRedirects {
		t.Errorf("a third document request with --max-redirects 1: %v, want %s", e, scrape.KindTooManyRedirects)
	}

	// Requests made at once set and send cookies without a race.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, e := s.Do(t.Context(), scrape.BrowserRequest{URL: fmt.Sprintf("%s/set/%d", srv.URL, i)}); e != nil {
				t.Errorf("set %d: %v", i, e)
			}
		})
	}
	wg.Wait()
	resp, e = s.Do(t.Context(), scrape.BrowserRequest{URL: srv.URL + "/echo"})
	if e != nil || strings.Count(string(resp.Body), "=1") != 8 {
		t.Errorf("after 8 cookies set: %q %v", resp.Body, e)
	}
	if _, e = s.Do(t.Context(), scrape.BrowserRequest{URL: srv.URL + "/big"}); e == nil || e.Kind != scrape.KindTooLarge {
		t.Errorf("a body over --max-body: %v, want %s", e, scrape.KindTooLarge)
	}
	if _, e = s.Do(t.Context(), scrape.BrowserRequest{URL: "ftp://example.com/"}); e == nil || e.Kind != scrape.KindInvalidURL {
		t.Errorf("an ftp URL: %v, want %s", e, scrape.KindInvalidURL)
	}

	var res scrape.Result
	if s.Finish(&res) || res.ETag != `"e1"` || res.SHA256 == "" || len(res.SetCookies) != 8 {
		t.Errorf("finish: etag %q sha %q set cookies %d", res.ETag, res.SHA256, len(res.SetCookies))
	}
}

// Not listed, a page on loopback is refused at the dial, as a fetch is.
func TestPageSessionGuard(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a refused request reached the server: %s", r.URL)
	}))
	t.Cleanup(srv.Close)
	f := scrape.NewFetcher(scrape.Config{})
	t.Cleanup(f.Close)
	page, _ := url.Parse(srv.URL)
	s := f.NewPageSession(t.Context(), page)
	_, e := s.Do(t.Context(), scrape.BrowserRequest{URL: srv.URL, Document: true})
	if e == nil || e.Kind != scrape.KindBlockedAddress {
		t.Fatalf("error %v, want %s", e, scrape.KindBlockedAddress)
	}
}
