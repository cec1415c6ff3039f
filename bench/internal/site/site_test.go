package site

import (
	"io"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

func TestPage(t *testing.T) {
	s := New(10000, 0)
	for _, n := range []int{0, 1, 4999, 9999} {
		page := s.Page(nil, "127.0.0.1:8080", n)
		if len(page) < 10<<10 || len(page) > 14<<10 {
			t.Errorf("page %d is %d bytes, want about 12 KB", n, len(page))
		}
		doc, err := goquery.NewDocumentFromReader(strings.NewReader(string(page)))
		if err != nil {
			t.Fatal(err)
		}
		if got := doc.Find("title").Text(); got != Title(n) {
			t.Errorf("title %q", got)
		}
		if got, _ := doc.Find(`meta[name="description"]`).Attr("content"); got != Description(n) {
			t.Errorf("description %q", got)
		}
		if doc.Find("h1").Length() != 1 {
			t.Errorf("page %d: %d h1", n, doc.Find("h1").Length())
		}
		base, _ := url.Parse("http://127.0.0.1:8080/page/" + strconv.Itoa(n))
		seen := map[string]bool{}
		doc.Find("a[href]").Each(func(_ int, sel *goquery.Selection) {
			h, _ := sel.Attr("href")
			u, _ := base.Parse(h)
			seen[u.String()] = true
		})
		want := s.Links(n)
		if len(seen) != LinksPerPage || len(want) != LinksPerPage {
			t.Errorf("page %d: %d distinct links, want %d", n, len(seen), LinksPerPage)
		}
		for _, l := range want {
			if !seen["http://127.0.0.1:8080/page/"+strconv.Itoa(l)] {
				t.Errorf("page %d: link to %d missing", n, l)
			}
		}
		if n == 0 {
			t.Logf("page 0: %d bytes", len(page))
		}
	}
}

// Small sites have fewer links but every page still renders.
func TestSmallSites(t *testing.T) {
	for _, pages := range []int{1, 2, 5, 20, 21} {
		s := New(pages, 0)
		for n := range pages {
			page := s.Page(nil, "h", n)
			doc, err := goquery.NewDocumentFromReader(strings.NewReader(string(page)))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := doc.Find("a[href]").Length(), min(LinksPerPage, pages-1); got != want {
				t.Errorf("%d pages, page %d: %d links, want %d", pages, n, got, want)
			}
		}
	}
}

func TestServe(t *testing.T) {
	srv := httptest.NewServer(New(30, 0))
	defer srv.Close()
	for path, code := range map[string]int{"/page/0": 200, "/page/29": 200, "/page/30": 404, "/": 404, "/page/x": 404} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, code)
		}
	}
}

// Every host of the site allows every page, so a crawler that obeys
// robots.txt fetches the same pages as one that does not.
func TestRobotsAllowsEverything(t *testing.T) {
	srv := httptest.NewServer(New(10, 0))
	t.Cleanup(srv.Close)
	res, err := srv.Client().Get(srv.URL + "/robots.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || string(body) != Robots || !strings.Contains(string(body), "Allow: /") {
		t.Errorf("robots.txt: %d %q, want 200 and %q", res.StatusCode, body, Robots)
	}
}

// TestValidators: with Validators a page names its ETag and Last-Modified
// and a request naming either gets a 304 without a body; /_served counts
// only the bodies served.
func TestValidators(t *testing.T) {
	s := New(100, 0)
	s.Validators = true
	get := func(header, value string) (int, string, int) {
		t.Helper()
		req := httptest.NewRequest("GET", "/page/7", nil)
		if header != "" {
			req.Header.Set(header, value)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		return w.Code, w.Header().Get("Etag"), w.Body.Len()
	}
	code, etag, n := get("", "")
	if code != 200 || etag != `"p7"` || n == 0 {
		t.Fatalf("page: %d, ETag %q, %d bytes", code, etag, n)
	}
	tests := []struct {
		header, value string
		want          int
	}{
		{"If-None-Match", `"p7"`, 304},
		{"If-None-Match", `"p8"`, 200},
		{"If-Modified-Since", Modified.Format("Mon, 02 Jan 2006 15:04:05 GMT"), 304},
		{"If-Modified-Since", Modified.Add(-time.Hour).Format("Mon, 02 Jan 2006 15:04:05 GMT"), 200},
	}
	bodies := n
	for _, tt := range tests {
		code, _, size := get(tt.header, tt.value)
		if code != tt.want || (code == 304) != (size == 0) {
			t.Errorf("%s: %s: %d with %d bytes, want %d", tt.header, tt.value, code, size, tt.want)
		}
		bodies += size
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("GET", "/_served", nil))
	if got := strings.TrimSpace(w.Body.String()); got != strconv.Itoa(bodies) {
		t.Errorf("/_served says %s, want %d", got, bodies)
	}
}
