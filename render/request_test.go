package render_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/render"
	"github.com/scrape-cluster/scrape/scrape"
)

// reqSite is a site whose page loads scripts and calls an API, and which
// keeps the headers of every request it is sent, to show that a rendered
// page's requests are the run's (its headers, cookies, proxy, limits).
type reqSite struct {
	*httptest.Server
	mu       sync.Mutex
	headers  map[string][]http.Header // by path
	inFlight atomic.Int32
	maxIn    atomic.Int32
	// wsConns counts connections to a listener the page opens a
	// WebSocket to: the browser must reach no network of its own.
	ws      net.Listener
	wsConns atomic.Int32
}

// reqPage loads three scripts of its own at once, then its API, whose
// answer becomes its title; it opens a WebSocket too.
const reqPage = `<!doctype html><html><head><title></title>
<script src="/s/1.js"></script><script src="/s/2.js"></script><script src="/s/3.js"></script>
</head><body><h1 id="h"></h1>
<script>
try { new WebSocket("ws://%s/socket"); } catch (e) {}
document.cookie = "js=1; path=/";
fetch("/api", {headers: {"X-From-Script": "yes"}}).then(r => r.json()).then(d => {
  document.title = d.title + " " + window.loaded;
  document.getElementById("h").textContent = d.title;
});
</script></body></html>`

func newReqSite(t *testing.T) *reqSite {
	t.Helper()
	s := &reqSite{headers: map[string][]http.Header{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ws = ln
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wsConns.Add(1)
			c.Close()
		}
	}()
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Type", "text/html")
		http.SetCookie(w, &http.Cookie{Name: "visit", Value: "1", Path: "/"})
		fmt.Fprintf(w, reqPage, ln.Addr())
	})
	mux.HandleFunc("/s/{n}", func(w http.ResponseWriter, r *http.Request) {
		n := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		for {
			m := s.maxIn.Load()
			if n <= m || s.maxIn.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, "window.loaded = (window.loaded || 0) + 1;")
	})
	mux.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"title":"From the API"}`)
	})
	mux.HandleFunc("/hop/{n}", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.PathValue("n"), &n)
		if n <= 0 {
			http.Redirect(w, r, "/page", http.StatusFound)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
	})
	mux.HandleFunc("/reads-cookie", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<html><head><title></title></head><body><script>document.title = document.cookie;</script></body></html>`)
	})
	mux.HandleFunc("/file.pdf", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		fmt.Fprint(w, "%PDF-1.4\n")
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><body>"+strings.Repeat("<p>padding</p>", 200<<10/14)+"</body></html>")
	})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.headers[r.URL.Path] = append(s.headers[r.URL.Path], r.Header.Clone())
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *reqSite) got(path string) []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.headers[path])
}

func renderOK(t *testing.T, r *render.Renderer, ctx context.Context, url string) scrape.Result {
	t.Helper()
	res := r.Render(ctx, url)
	if res.Error != nil || !res.Rendered {
		t.Fatalf("render %s: rendered %v, error %v", url, res.Rendered, res.Error)
	}
	return res
}

// The run's headers and cookies go with the page's own request and with
// what its scripts ask for; credentials stay on the page's site; the
// page's requests to its host go one at a time; the browser opens no
// connection of its own.
func TestRenderRequestsAreTheRuns(t *testing.T) {
	site := newReqSite(t)
	r := open(t, scrape.Config{
		Headers: []scrape.Header{{Name: "X-Run", Value: "r1"}, {Name: "Authorization", Value: "Bearer t"}},
		Cookies: []scrape.Cookie{{Name: "consent", Value: "yes"}},
		Session: true,
	})
	ctx := scrape.WithCookies(scrape.Listed(t.Context()), "sid=abc")
	res := renderOK(t, r, ctx, site.URL+"/page")
	if res.Title != "From the API 3" {
		t.Errorf("title %q: the scripts or the API did not reach the page", res.Title)
	}
	for _, path := range []string{"/page", "/s/1.js", "/api"} {
		hs := site.got(path)
		if len(hs) != 1 {
			t.Fatalf("%s requested %d times, want 1", path, len(hs))
		}
		h := hs[0]
		if h.Get("X-Run") != "r1" || h.Get("Authorization") != "Bearer t" {
			t.Errorf("%s: X-Run %q Authorization %q: the run's headers are missing", path, h.Get("X-Run"), h.Get("Authorization"))
		}
		c := h.Get("Cookie")
		if !strings.Contains(c, "consent=yes") || !strings.Contains(c, "sid=abc") {
			t.Errorf("%s: Cookie %q lacks the run's and the task's cookies", path, c)
		}
		if path != "/page" && !strings.Contains(c, "visit=1") {
			t.Errorf("%s: Cookie %q lacks the one the page set", path, c)
		}
		if !strings.Contains(h.Get("User-Agent"), "scrape") {
			t.Errorf("%s: User-Agent %q is not the run's", path, h.Get("User-Agent"))
		}
	}
	if h := site.got("/api")[0]; h.Get("X-From-Script") != "yes" || !strings.Contains(h.Get("Cookie"), "js=1") {
		t.Errorf("the script's own header or cookie did not reach the API: %v", h)
	}
	if len(res.SetCookies) != 1 || !strings.HasPrefix(res.SetCookies[0].Header, "visit=1") {
		t.Errorf("set cookies %+v, want the page's visit=1", res.SetCookies)
	}
	if m := site.maxIn.Load(); m != 1 {
		t.Errorf("%d script requests to the page's host at once, want 1", m)
	}
	if n := site.wsConns.Load(); n != 0 {
		t.Errorf("the browser opened %d connection(s) of its own (a WebSocket)", n)
	}
}

// A script's request to another site gets the run's plain headers but not
// its credentials.
func TestRenderCredentialsStayOnSite(t *testing.T) {
	other := newReqSite(t)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<html><head><title>x</title><script src="%s/s/1.js"></script></head><body></body></html>`,
			strings.Replace(other.URL, "127.0.0.1", "localhost", 1))
	}))
	t.Cleanup(page.Close)
	r := open(t, scrape.Config{
		Headers:         []scrape.Header{{Name: "X-Run", Value: "r1"}, {Name: "Authorization", Value: "Bearer t"}},
		AllowPrivateAll: true,
	})
	renderOK(t, r, scrape.Listed(t.Context()), page.URL)
	hs := other.got("/s/1.js")
	if len(hs) != 1 {
		t.Fatalf("the other site's script requested %d times", len(hs))
	}
	if hs[0].Get("X-Run") != "r1" || hs[0].Get("Authorization") != "" {
		t.Errorf("other site got X-Run %q Authorization %q; want the plain header only", hs[0].Get("X-Run"), hs[0].Get("Authorization"))
	}
}

// --since, redirects, body limits and the archive treat a rendered page's
// document as the fetcher treats a page.
func TestRenderDocumentLikeAFetch(t *testing.T) {
	site := newReqSite(t)
	r := open(t, scrape.Config{MaxBody: 100 << 10, MaxRedirects: 3, Archive: true})
	ctx := scrape.Listed(t.Context())

	res := renderOK(t, r, ctx, site.URL+"/hop/2")
	if res.FinalURL != site.URL+"/page" || res.ETag != `"v1"` || res.SHA256 == "" {
		t.Errorf("after redirects: final %q etag %q sha %q", res.FinalURL, res.ETag, res.SHA256)
	}
	if res.Exchange == nil || !strings.Contains(res.Exchange.Response, "200 OK") || !strings.Contains(res.Exchange.Body, "/s/1.js") {
		t.Errorf("archive exchange %+v, want the page's own document", res.Exchange)
	}
	// Its redirects' hops and what its scripts asked for are archived too,
	// each under its own URL.
	var got []string
	for _, ex := range res.Resources {
		got = append(got, strings.TrimPrefix(ex.URL, site.URL))
		if ex.Request == "" || ex.Response == "" {
			t.Errorf("resource %s: request %q response %q", ex.URL, ex.Request, ex.Response)
		}
	}
	slices.Sort(got)
	if want := []string{"/api", "/hop/0", "/hop/1", "/hop/2", "/s/1.js", "/s/2.js", "/s/3.js"}; !slices.Equal(got, want) {
		t.Errorf("archived resources %v, want %v", got, want)
	}

	// Without --session, the cookies the page's response and its script
	// set go with its later requests all the same, as in a browser.
	if c := site.got("/api")[0].Get("Cookie"); !strings.Contains(c, "visit=1") || !strings.Contains(c, "js=1") {
		t.Errorf("the API's Cookie %q lacks what the page set", c)
	}

	unchanged := r.Render(scrape.WithValidators(ctx, `"v1"`, ""), site.URL+"/page")
	if !unchanged.Unchanged || unchanged.Error != nil || unchanged.Rendered {
		t.Errorf("with its ETag: unchanged %v rendered %v error %v", unchanged.Unchanged, unchanged.Rendered, unchanged.Error)
	}
	if n := len(site.got("/api")); n != 1 {
		t.Errorf("the API was called %d times; an unchanged page's scripts must not run", n)
	}

	tests := []struct{ path, kind string }{
		{"/hop/5", scrape.KindTooManyRedirects},
		{"/loop", scrape.KindTooManyRedirects},
		{"/big", scrape.KindTooLarge},
		{"/file.pdf", scrape.KindNotHTML},
	}
	for _, tt := range tests {
		res := r.Render(ctx, site.URL+tt.path)
		if kind(res.Error) != tt.kind {
			t.Errorf("%s: error %v, want %s", tt.path, res.Error, tt.kind)
		}
	}
}

// Through --proxy, every request of the page goes by the proxy.
func TestRenderThroughProxy(t *testing.T) {
	site := newReqSite(t)
	proxy := testsite.NewProxy()
	ps := httptest.NewServer(proxy)
	t.Cleanup(ps.Close)
	r := open(t, scrape.Config{Proxies: []string{ps.URL}})
	res := renderOK(t, r, scrape.Listed(t.Context()), site.URL+"/page")
	if res.Proxy == "" {
		t.Error("the record does not name its proxy")
	}
	// The page, three scripts, the API.
	if n := proxy.Requests(); n != 5 {
		t.Errorf("%d requests went by the proxy, want 5", n)
	}
}

// A page's requests, its own document's included, wait for their start
// times.
func TestRenderLeasesItsRequests(t *testing.T) {
	site := newReqSite(t)
	r := open(t, scrape.Config{})
	var mu sync.Mutex
	var hosts []string
	ctx := render.WithLease(scrape.Listed(t.Context()), func(ctx context.Context, u *url.URL) error {
		mu.Lock()
		hosts = append(hosts, u.Host)
		mu.Unlock()
		return nil
	})
	renderOK(t, r, ctx, site.URL+"/page")
	u, _ := url.Parse(site.URL)
	mu.Lock()
	defer mu.Unlock()
	if len(hosts) != 5 || slices.ContainsFunc(hosts, func(h string) bool { return h != u.Host }) {
		t.Errorf("leases for %v, want five for %s (the page, three scripts and the API)", hosts, u.Host)
	}
}

// A page's script sees the run's and the task's cookies in document.cookie,
// as in the user's own browser (a consent wall reads it), with or without
// --session.
func TestRenderScriptsSeeTheRunsCookies(t *testing.T) {
	site := newReqSite(t)
	for _, session := range []bool{false, true} {
		t.Run(fmt.Sprintf("session=%v", session), func(t *testing.T) {
			r := open(t, scrape.Config{Cookies: []scrape.Cookie{{Name: "consent", Value: "yes"}}, Session: session})
			res := renderOK(t, r, scrape.WithCookies(scrape.Listed(t.Context()), "sid=abc"), site.URL+"/reads-cookie")
			if !strings.Contains(res.Title, "consent=yes") || !strings.Contains(res.Title, "sid=abc") {
				t.Errorf("document.cookie %q lacks the run's and the task's cookies", res.Title)
			}
		})
	}
}
