package scrape

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testsite"
)

func TestParseHeader(t *testing.T) {
	tests := []struct {
		in      string
		want    Header
		wantErr string
	}{
		{"X-Token: abc", Header{"X-Token", "abc"}, ""},
		{"accept-language:  de-CH , en ", Header{"Accept-Language", "de-CH , en"}, ""},
		{"X-Empty:", Header{"X-Empty", ""}, ""},
		{"no colon", Header{}, "want 'Name: value'"},
		{": value", Header{}, "want 'Name: value'"},
		{"Bad Name: v", Header{}, "no header name"},
		{"Host: example.com", Header{}, "set by scrape itself"},
		{"X-A: one\x01two", Header{}, "control character"},
	}
	for _, tt := range tests {
		got, err := ParseHeader(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseHeader(%q) error %v, want one saying %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseHeader(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseCookieKeepsTheValueOutOfErrors(t *testing.T) {
	if c, err := ParseCookie("sid=s3cret"); err != nil || c != (Cookie{Name: "sid", Value: "s3cret"}) {
		t.Fatalf("ParseCookie = %+v, %v", c, err)
	}
	_, err := ParseCookie("sid=s3cret;x")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v: want one without the value", err)
	}
}

func TestCookieMatches(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	u := func(s string) *url.URL {
		t.Helper()
		v, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name   string
		c      Cookie
		url    string
		listed string
		want   bool
	}{
		{"no domain, listed host", Cookie{Name: "a"}, "http://a.test/x", "a.test", true},
		{"no domain, host not listed", Cookie{Name: "a"}, "http://b.test/x", "a.test", false},
		{"no domain, nothing listed", Cookie{Name: "a"}, "http://a.test/x", "", false},
		{"domain exact", Cookie{Name: "a", Domain: "a.test"}, "http://a.test/", "", true},
		{"host-only: no subdomain", Cookie{Name: "a", Domain: "a.test"}, "http://www.a.test/", "", false},
		{"subdomains", Cookie{Name: "a", Domain: "a.test", Subdomains: true}, "http://www.a.test/", "", true},
		{"suffix is no subdomain", Cookie{Name: "a", Domain: "a.test", Subdomains: true}, "http://xa.test/", "", false},
		{"path prefix", Cookie{Name: "a", Domain: "a.test", Path: "/shop"}, "http://a.test/shop/cart", "", true},
		{"path is no prefix by bytes alone", Cookie{Name: "a", Domain: "a.test", Path: "/shop"}, "http://a.test/shopping", "", false},
		{"secure on http", Cookie{Name: "a", Domain: "a.test", Secure: true}, "http://a.test/", "", false},
		{"secure on https", Cookie{Name: "a", Domain: "a.test", Secure: true}, "https://a.test/", "", true},
		{"expired", Cookie{Name: "a", Domain: "a.test", Expires: now.Add(-time.Second)}, "http://a.test/", "", false},
		{"not expired", Cookie{Name: "a", Domain: "a.test", Expires: now.Add(time.Hour)}, "http://a.test/", "", true},
	}
	for _, tt := range tests {
		if got := tt.c.matches(u(tt.url), tt.listed, now); got != tt.want {
			t.Errorf("%s: matches = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// echoSite records the headers of each request it gets.
type echoSite struct {
	mu  sync.Mutex
	got []http.Header
}

func (e *echoSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.got = append(e.got, r.Header.Clone())
	e.mu.Unlock()
	w.Header().Set("Content-Type", "text/html")
	w.Write([]byte("<title>echo</title>"))
}

func (e *echoSite) last(t *testing.T) http.Header {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.got) == 0 {
		t.Fatal("the site got no request")
	}
	return e.got[len(e.got)-1]
}

func TestFetchSendsHeadersAndCookies(t *testing.T) {
	site := &echoSite{}
	srv := httptest.NewServer(site)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	hostname, _, _ := strings.Cut(host, ":")

	f := NewFetcher(Config{
		AllowPrivateAll: true,
		Headers:         []Header{{"X-Token", "t0k"}, {"User-Agent", "mine/1"}},
		Cookies: []Cookie{
			{Name: "plain", Value: "1"},                                 // listed hosts only
			{Name: "file", Value: "2", Domain: hostname},                // its domain
			{Name: "elsewhere", Value: "3", Domain: "other.example"},    // never here
			{Name: "shop", Value: "4", Domain: hostname, Path: "/shop"}, // its path
		},
	})
	t.Cleanup(f.Close)

	res := f.Fetch(Listed(t.Context()), srv.URL+"/page")
	if res.Error != nil {
		t.Fatal(res.Error)
	}
	h := site.last(t)
	if h.Get("X-Token") != "t0k" || h.Get("User-Agent") != "mine/1" {
		t.Errorf("headers %v: want X-Token and the User-Agent given", h)
	}
	if got, want := h.Get("Cookie"), "plain=1; file=2"; got != want {
		t.Errorf("Cookie %q, want %q", got, want)
	}

	// Not listed: a cookie without a domain stays home.
	f.Fetch(t.Context(), srv.URL+"/shop/cart")
	if got, want := site.last(t).Get("Cookie"), "file=2; shop=4"; got != want {
		t.Errorf("unlisted Cookie %q, want %q", got, want)
	}

	// The task's cookies (the coordinator's jar) go along too.
	f.Fetch(WithCookies(t.Context(), "sid=abc"), srv.URL+"/x")
	if got, want := site.last(t).Get("Cookie"), "sid=abc; file=2"; got != want {
		t.Errorf("Cookie with the task's %q, want %q", got, want)
	}
}

// With Session, a fetch keeps the cookies a redirect's response set for
// the request after it, and hands them all back for the jar.
func TestFetchSessionFollowsALogin(t *testing.T) {
	srv := httptest.NewServer(testsite.New(3))
	t.Cleanup(srv.Close)

	without := NewFetcher(Config{AllowPrivateAll: true})
	t.Cleanup(without.Close)
	if res := without.Fetch(t.Context(), srv.URL+"/login"); res.Status != http.StatusForbidden {
		t.Fatalf("without a session: status %d, want 403 (the site must need its cookie)", res.Status)
	}

	f := NewFetcher(Config{AllowPrivateAll: true, Session: true})
	t.Cleanup(f.Close)
	res := f.Fetch(t.Context(), srv.URL+"/login")
	if res.Error != nil || res.Status != http.StatusOK || len(res.Links) != 3 {
		t.Fatalf("login: status %d, error %v, %d links; want the member index", res.Status, res.Error, len(res.Links))
	}
	if len(res.SetCookies) != 1 || res.SetCookies[0].URL != srv.URL+"/login" || !strings.HasPrefix(res.SetCookies[0].Header, testsite.SessionCookie+"=") {
		t.Fatalf("SetCookies %+v: want the session cookie from /login", res.SetCookies)
	}

	// A later fetch, on any node, gets the cookie through its task.
	name, value, _ := strings.Cut(strings.Split(res.SetCookies[0].Header, ";")[0], "=")
	page := f.Fetch(WithCookies(t.Context(), name+"="+value), srv.URL+"/members/1")
	if page.Status != http.StatusOK || page.Title != "Member page 1" {
		t.Errorf("member page with the task's cookie: status %d, title %q", page.Status, page.Title)
	}
	if page := f.Fetch(t.Context(), srv.URL+"/members/1"); page.Status != http.StatusForbidden {
		t.Errorf("member page without it: status %d, want 403", page.Status)
	}
}
